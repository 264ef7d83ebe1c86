package encrypt

import (
	"encoding/json"
	"io"
	"sort"
	"time"
)

// MetricsNamespace is the CloudWatch namespace of s3rekey's metrics.
const MetricsNamespace = "s3rekey"

// writeEMF prints one Embedded Metric Format document per outcome and
// bucket: the metric Objects, with dimension sets {Outcome} and
// {Outcome, Bucket}.
func writeEMF(w io.Writer, now time.Time, counts map[[2]string]int) {
	keys := make([][2]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"/"+keys[i][1] < keys[j][0]+"/"+keys[j][1] })
	for _, k := range keys {
		doc := map[string]any{
			"_aws": map[string]any{
				"Timestamp": now.UnixMilli(),
				"CloudWatchMetrics": []any{map[string]any{
					"Namespace":  MetricsNamespace,
					"Dimensions": [][]string{{"Outcome"}, {"Outcome", "Bucket"}},
					"Metrics":    []any{map[string]string{"Name": "Objects", "Unit": "Count"}},
				}},
			},
			"Outcome": k[0],
			"Bucket":  k[1],
			"Objects": counts[k],
		}
		line, _ := json.Marshal(doc)
		_, _ = w.Write(append(line, '\n'))
	}
}
