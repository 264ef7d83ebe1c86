package jobs_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/jobs"
)

// checkManifest reads a job's manifest.json, checks every entry against
// the object it names, and returns the report's rows.
func (r *run) checkManifest(t testing.TB, url string) []jobs.Row {
	t.Helper()
	bucket, key, ok := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	if !ok || !strings.HasSuffix(key, "manifest.json") {
		t.Fatalf("report manifest %q", url)
	}
	body := r.get(t, bucket, key)
	var m jobs.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var rows []jobs.Row
	var total int64
	for _, p := range m.Results {
		gz := r.get(t, p.Bucket, p.Key)
		sum := md5.Sum(gz)
		part, err := jobs.ReadPart(gz)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(sum[:]) != p.MD5Checksum || int64(len(gz)) != p.Size || int64(len(part)) != p.Rows {
			t.Fatalf("manifest entry %s says MD5 %s, %d bytes, %d rows; it is %x, %d bytes, %d rows", p.Key, p.MD5Checksum, p.Size, p.Rows,
				sum, len(gz), len(part))
		}
		total += p.Rows
		rows = append(rows, part...)
	}
	if total != m.Rows {
		t.Fatalf("manifest says %d rows, its entries %d", m.Rows, total)
	}
	return rows
}

func (r *run) get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	out, err := r.m.s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dump renders the job's records, for a failing schedule's message.
func (r *run) dump() string {
	out, err := r.m.ddb.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String(r.m.jc.Table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: "job#" + r.jobID}}})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, it := range out.Items {
		fmt.Fprintf(&b, "  %s", it["sk"].(*ddbtypes.AttributeValueMemberS).Value)
		for _, a := range []string{"rec", "committed", "v", "open", "tok"} {
			if v, ok := it[a]; ok {
				switch v := v.(type) {
				case *ddbtypes.AttributeValueMemberS:
					fmt.Fprintf(&b, " %s=%s", a, v.Value)
				case *ddbtypes.AttributeValueMemberN:
					fmt.Fprintf(&b, " %s=%s", a, v.Value)
				}
			}
		}
		b.WriteString("\n")
	}
	for _, m := range r.w.queues[dlqURL] {
		fmt.Fprintf(&b, "  dead letter %s\n", m.body)
	}
	return b.String()
}
