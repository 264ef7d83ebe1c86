package permissions

import (
	"strings"
	"testing"
)

func TestReaderIsReadOnly(t *testing.T) {
	r := Resources{Partition: "aws", Region: "eu-west-1", Account: "111122223333", JobsTableARN: "table", InventoryBucketARN: "arn:aws:s3:::inv"}
	for name, v := range map[string]View{
		"created inventory key": {DeploymentParameterARN: "param", QueueARNs: []string{"q1", "q2"}, InventoryKeyARN: "invkey"},
		"configured inventory":  {DeploymentParameterARN: "param", QueueARNs: []string{"q1"}},
	} {
		t.Run(name, func(t *testing.T) {
			stmts := Reader(r, v)
			sids := map[string]Statement{}
			for _, st := range stmts {
				sids[st.Sid] = st
				for _, a := range st.Actions {
					verb := a[strings.Index(a, ":")+1:]
					if !strings.HasPrefix(verb, "Get") && !strings.HasPrefix(verb, "List") && verb != "Query" && verb != "Decrypt" {
						t.Errorf("%s grants %s, which is not a read", st.Sid, a)
					}
				}
			}
			if got := sids["ReadJobs"]; len(got.Actions) != 1 || got.Resources[0] != "table" {
				t.Errorf("jobs grant %+v, want Query on the table only", got)
			}
			if got := sids["ReadBucketSettings"]; got.Condition["StringEquals"]["aws:ResourceAccount"][0] != "111122223333" {
				t.Errorf("bucket settings grant %+v is not bound to the account", got)
			}
			if _, ok := sids["InventoryKey"]; ok != (v.InventoryKeyARN != "") {
				t.Errorf("inventory key grant present %v, want %v", ok, v.InventoryKeyARN != "")
			}
			if len(sids["QueueDepths"].Resources) != len(v.QueueARNs) {
				t.Errorf("queue grant %+v", sids["QueueDepths"])
			}
		})
	}
}

func TestReportKeyThroughTheReportBucketsRegion(t *testing.T) {
	r := Resources{Partition: "aws", Region: "eu-west-1", Account: "111122223333", ReportObjectsARN: "o", ReportKeyARN: "k"}
	for name, tc := range map[string]struct{ region, want string }{
		"own region":            {"", "s3.eu-west-1.amazonaws.com"},
		"central bucket region": {"us-east-1", "s3.us-east-1.amazonaws.com"},
	} {
		t.Run(name, func(t *testing.T) {
			r.ReportRegion = tc.region
			for _, st := range Encrypt(r) {
				if st.Sid == "ReportKey" {
					if got := st.Condition["StringEquals"]["kms:ViaService"]; len(got) != 1 || got[0] != tc.want {
						t.Errorf("report key through %v, want %s", got, tc.want)
					}
					return
				}
			}
			t.Error("no ReportKey statement")
		})
	}
}
