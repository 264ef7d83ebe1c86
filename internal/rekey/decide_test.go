package rekey

import (
	"testing"
	"time"

	"github.com/s3rekey/s3rekey/internal/policy"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	target := policy.Bucket{KMSKeyARN: "arn:aws:kms:us-east-1:111122223333:key/new", BucketKeyEnabled: true}
	const otherKey = "arn:aws:kms:us-east-1:111122223333:key/old"
	future, past := now.Add(time.Hour), now.Add(-time.Hour)
	update := Decision{Update: true}
	stop := func(st Status, reason string) Decision { return Decision{Outcome: Outcome{Status: st, Reason: reason}} }
	cases := []struct {
		name   string
		state  State
		dryRun bool
		want   Decision
	}{
		{"missing", State{Missing: true}, false, stop(Gone, "")},
		{"delete marker", State{DeleteMarker: true, Encryption: EncS3}, false, stop(Gone, "")},
		{"target key with bucket key", State{Encryption: EncKMS, KMSKeyARN: target.KMSKeyARN, BucketKey: true}, false, stop(Compliant, "")},
		{"compliant and locked", State{Encryption: EncKMS, KMSKeyARN: target.KMSKeyARN, BucketKey: true, LegalHold: true}, false, stop(Compliant, "")},
		{"compliant in dry run", State{Encryption: EncKMS, KMSKeyARN: target.KMSKeyARN, BucketKey: true}, true, stop(Compliant, "")},
		{"target key without bucket key", State{Encryption: EncKMS, KMSKeyARN: target.KMSKeyARN}, false, update},
		{"other key", State{Encryption: EncKMS, KMSKeyARN: otherKey, BucketKey: true}, false, update},
		{"SSE-S3", State{Encryption: EncS3}, false, update},
		{"SSE-S3 dry run", State{Encryption: EncS3}, true, stop(WouldUpdate, "")},
		{"not encrypted", State{Encryption: EncNone}, false, stop(Skipped, ReasonNotEncrypted)},
		{"SSE-C", State{Encryption: EncC}, false, stop(Skipped, ReasonSSEC)},
		{"DSSE-KMS under the target key", State{Encryption: EncDSSE, KMSKeyARN: target.KMSKeyARN}, false, stop(Skipped, ReasonDSSEKMS)},
		{"not encrypted and locked", State{Encryption: EncNone, LegalHold: true}, false, stop(Skipped, ReasonNotEncrypted)},
		{"legal hold", State{Encryption: EncS3, LegalHold: true}, false, Decision{Outcome: Outcome{Skipped, ReasonObjectLock, "legal hold"}}},
		{"governance retention", State{Encryption: EncS3, LockMode: "GOVERNANCE", RetainUntil: future}, false,
			Decision{Outcome: Outcome{Skipped, ReasonObjectLock, "GOVERNANCE retention until 2026-11-23T13:00:00Z"}}},
		{"compliance retention", State{Encryption: EncKMS, KMSKeyARN: otherKey, LockMode: "COMPLIANCE", RetainUntil: future}, false,
			Decision{Outcome: Outcome{Skipped, ReasonObjectLock, "COMPLIANCE retention until 2026-11-23T13:00:00Z"}}},
		{"expired retention", State{Encryption: EncS3, LockMode: "COMPLIANCE", RetainUntil: past}, false, update},
		{"locked in dry run", State{Encryption: EncS3, LegalHold: true}, true, Decision{Outcome: Outcome{Skipped, ReasonObjectLock, "legal hold"}}},
		{"unknown state", State{Encryption: "ROT13"}, false, Decision{Outcome: Outcome{Failed, ReasonInvalidRequest, "unknown encryption state ROT13"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.state, target, tc.dryRun, now); got != tc.want {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}
