package jobs

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// TestReportRequestsGoToTheReportBucketsRegion: a central report bucket
// in another region is written through a client of its region, naming its
// owner; without a region, the function's own.
func TestReportRequestsGoToTheReportBucketsRegion(t *testing.T) {
	for name, tc := range map[string]struct{ env, want string }{
		"the central bucket's region": {"eu-central-1", "eu-central-1"},
		"unset: the function's":       {"", "us-west-2"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(EnvTable, "jobs")
			t.Setenv(EnvReportBucket, "central-reports")
			t.Setenv(EnvReportKey, "arn:aws:kms:eu-central-1:999988887777:key/k")
			t.Setenv(EnvReportOwner, "999988887777")
			t.Setenv(EnvReportRegion, tc.env)
			c, err := ConfigFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			_, committer := c.Wire(aws.Config{Region: "us-west-2"})
			client, ok := committer.Get.(bucketowner.Client)
			if !ok {
				t.Fatalf("report reader %T", committer.Get)
			}
			if got := client.Options().Region; got != tc.want || client.Owner != "999988887777" {
				t.Errorf("report client region %q owner %q, want %q and the central account", got, client.Owner, tc.want)
			}
		})
	}
}
