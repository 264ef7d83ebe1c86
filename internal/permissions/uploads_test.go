package permissions

import (
	"slices"
	"testing"
)

// TestEncryptSendsAndConsumesOnEachPath: with an uploads queue, the
// encrypt function consumes it and sends an upload's retries and dead
// letters to it and its DLQ, beside the work queue's; without one, the
// work queue's grants are all there is.
func TestEncryptSendsAndConsumesOnEachPath(t *testing.T) {
	base := Resources{Partition: "aws", Region: "us-east-1", Account: "111122223333", WorkQueueARN: "work", WorkDLQARN: "work-dlq"}
	withUploads := base
	withUploads.UploadsQueueARN, withUploads.UploadsDLQARN = "uploads", "uploads-dlq"
	for _, tc := range []struct {
		name          string
		res           Resources
		sends         []string
		consumesSids  []string
		consumedQueue map[string]string
	}{
		{"uploads queue", withUploads, []string{"work", "work-dlq", "uploads", "uploads-dlq"},
			[]string{"ConsumeUploadsQueue", "ConsumeWorkQueue"}, map[string]string{"ConsumeWorkQueue": "work", "ConsumeUploadsQueue": "uploads"}},
		{"uploads on the work queue", base, []string{"work", "work-dlq"}, []string{"ConsumeWorkQueue"}, map[string]string{"ConsumeWorkQueue": "work"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var consumes []string
			for _, st := range Encrypt(tc.res) {
				switch {
				case st.Sid == "RetryAndDeadLetter":
					if !slices.Equal(st.Resources, tc.sends) {
						t.Errorf("sends to %v, want %v", st.Resources, tc.sends)
					}
				case slices.Contains(st.Actions, "sqs:ReceiveMessage"):
					consumes = append(consumes, st.Sid)
					if want := tc.consumedQueue[st.Sid]; len(st.Resources) != 1 || st.Resources[0] != want {
						t.Errorf("%s consumes %v, want %s", st.Sid, st.Resources, want)
					}
				}
			}
			slices.Sort(consumes)
			if !slices.Equal(consumes, tc.consumesSids) {
				t.Errorf("consumes with %v, want %v", consumes, tc.consumesSids)
			}
		})
	}
}
