package verify

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// refusingMac says no MAC is valid.
type refusingMac struct{}

func (refusingMac) VerifyMac(context.Context, *kms.VerifyMacInput, ...func(*kms.Options)) (*kms.VerifyMacOutput, error) {
	return &kms.VerifyMacOutput{MacValid: false}, nil
}

// FuzzCheck: an evidence file is outside input; Check must reject what
// does not verify, and never panic.
func FuzzCheck(f *testing.F) {
	f.Add([]byte("{}\ns3rekey-signature sha256=00 mac=HMAC_SHA_256:AA== key=arn:aws:kms:us-east-1:111122223333:key/k\n"))
	f.Add([]byte("s3rekey-signature"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ev, _, err := Check(context.Background(), refusingMac{}, data, ""); err == nil || ev != nil {
			t.Fatalf("accepted without a valid MAC: %v", ev)
		}
	})
}
