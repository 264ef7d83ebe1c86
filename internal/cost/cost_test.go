package cost

import (
	"math"
	"testing"
)

func TestPrice(t *testing.T) {
	b := Price(Usage{Objects: 1_000_000, UOE: 1_000_000, S3Get: 500_000, S3Put: 1000, SQS: 5000, KMS: 20000,
		LambdaSeconds: 100, LambdaMemoryMB: 2048, LambdaInvokes: 1000})
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if !near(b.UOE, 5.0) || !near(b.S3Requests, 0.2+0.005) || !near(b.SQS, 0.002) || !near(b.KMS, 0.06) {
		t.Errorf("breakdown %+v", b)
	}
	if !near(b.Lambda, 100*2*LambdaPerGBSecond+1000*LambdaPerInvocation) || !near(b.Overhead, b.S3Requests+b.SQS+b.Lambda) {
		t.Errorf("lambda %v overhead %v", b.Lambda, b.Overhead)
	}
	if !near(b.BatchOps, 1.25) || !near(b.Total, b.UOE+b.Overhead+b.KMS) {
		t.Errorf("batch ops %v total %v", b.BatchOps, b.Total)
	}
	if got := PerMillion(2, 500_000); !near(got, 4) {
		t.Errorf("PerMillion %v", got)
	}
	if SQSChunks(1) != 1 || SQSChunks(64<<10) != 1 || SQSChunks(64<<10+1) != 2 {
		t.Error("SQSChunks")
	}
}
