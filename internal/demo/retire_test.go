package demo

import (
	"context"
	"strings"
	"testing"
)

// The demo ends by verifying its buckets from their metadata tables with
// no object request, and retiring the old key through disabling: refused
// first while the DSSE-KMS versions the policy skips are under it.
func TestDemoRetiresTheOldKey(t *testing.T) {
	res, err := Run(context.Background(), Options{Objects: 200})
	if err != nil {
		t.Fatal(err)
	}
	r := res.Retirement
	if r == nil || r.Verified == nil {
		t.Fatal("no retirement step")
	}
	if r.ObjectRequests != 0 {
		t.Errorf("verification from the tables made %d object requests", r.ObjectRequests)
	}
	for _, b := range r.Verified.Buckets {
		if b.Source != "metadata-table" {
			t.Errorf("s3://%s verified from %s, want its table", b.Bucket, b.Source)
		}
	}
	if !strings.Contains(r.Refused, "versions are still under the key") || r.Rekeyed == 0 {
		t.Errorf("refused %q, re-keyed %d: want a refusal, then versions moved", r.Refused, r.Rekeyed)
	}
	if r.Disabled == nil || len(r.Failures) > 0 {
		t.Fatalf("disabled %+v, failures %v", r.Disabled, r.Failures)
	}
	if len(res.Failures) > 0 {
		t.Errorf("demo failures: %v", res.Failures)
	}
}
