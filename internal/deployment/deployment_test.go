package deployment

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `{"version":1,"account":"111122223333","region":"us-east-1","jobsTable":"t","workQueueUrl":"w","controlQueueUrl":"c"}`
	tests := []struct {
		name, in, wantErr string
	}{
		{"complete", good, ""},
		{"unknown field", strings.Replace(good, `"region"`, `"regoin"`, 1), "unknown field"},
		{"other version", strings.Replace(good, `"version":1`, `"version":2`, 1), "version 2"},
		{"missing table and queue", `{"version":1,"account":"111122223333","region":"us-east-1"}`, "missing controlQueueUrl, jobsTable, workQueueUrl"},
		{"not json", `nope`, "deployment record"},
		{"with the uploads queue", strings.Replace(good, `"controlQueueUrl":"c"`, `"controlQueueUrl":"c","uploadsQueueUrl":"u","uploadsDlqUrl":"ud"`, 1), ""},
		{"uploads queue without its DLQ", strings.Replace(good, `"controlQueueUrl":"c"`, `"controlQueueUrl":"c","uploadsQueueUrl":"u"`, 1), "uploadsQueueUrl and uploadsDlqUrl together"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil || r.JobsTable != "t" {
					t.Fatalf("Parse = %+v, %v", r, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"account":"111122223333","region":"us-east-1","jobsTable":"t","workQueueUrl":"w","controlQueueUrl":"c"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err == nil && (r.JobsTable == "" || r.Version != Version) {
			t.Fatalf("accepted an incomplete record: %+v", r)
		}
	})
}
