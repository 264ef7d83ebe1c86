package planner

import (
	"testing"

	"github.com/s3rekey/s3rekey/internal/policy"
)

// The plan's time is set by whichever budget binds: objects a second on
// the bucket, or the KMS requests the objects cause.
func TestPaceAtTheBudgets(t *testing.T) {
	cases := []struct {
		name          string
		objects, kms  int64
		perObject     float64
		kmsPerSecond  float64
		seconds       float64
		bound         string
		onePartitionS float64
	}{
		{"no budget", 7000, 7000, 0, 0, 0, "", 2},
		{"objects bind", 7000, 0, 1000, 500, 7, "objects", 2},
		{"KMS binds", 7000, 14000, 1000, 1000, 14, "kms", 2},
		{"KMS only", 3500, 3500, 0, 100, 35, "kms", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := pace(tc.objects, tc.kms, policy.Bucket{MaxObjectsPerSecond: tc.perObject}, &policy.Policy{MaxKMSRequestsPerSecond: tc.kmsPerSecond})
			if got.Seconds != tc.seconds || got.Bound != tc.bound || got.OnePartitionSeconds != tc.onePartitionS {
				t.Errorf("pace %+v, want %vs bound by %q, %vs at one partition", got, tc.seconds, tc.bound, tc.onePartitionS)
			}
		})
	}
}
