package retire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/verify"
)

const key = "arn:aws:kms:us-east-1:111122223333:key/old"

// The steps after disabling (docs/kms/latest/developerguide/deleting-keys.md: disable,
// watch for use, then schedule the deletion), and a key pending deletion
// with versions under it.
func TestAdvise(t *testing.T) {
	clear := Remaining{KeyARN: key}
	under := Remaining{KeyARN: key, Under: map[string]int64{"photos": 3}}
	period := 30 * 24 * time.Hour
	deletion := time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		st    Status
		rem   Remaining
		ready bool
		want  string // in Wait, Warning or a command
	}{
		{"still enabled", Status{KeyARN: key, State: "Enabled"}, clear, false, "disable it first"},
		{"used after disabling", Status{KeyARN: key, State: "Disabled", UsedSinceDisabled: true, LastOperation: "Decrypt", Quiet: 40 * 24 * time.Hour}, clear, false, "used (Decrypt)"},
		{"not quiet long enough", Status{KeyARN: key, State: "Disabled", Quiet: 3 * 24 * time.Hour}, clear, false, "quiet for 72h0m0s"},
		{"versions came back", Status{KeyARN: key, State: "Disabled", Quiet: 40 * 24 * time.Hour}, under, false, "under the key again"},
		{"ready", Status{KeyARN: key, State: "Disabled", Quiet: 31 * 24 * time.Hour}, clear, true, "aws kms schedule-key-deletion --key-id " + key + " --pending-window-in-days 7"},
		{"pending deletion with versions", Status{KeyARN: key, State: "PendingDeletion", DeletionDate: &deletion}, under, false, "aws kms cancel-key-deletion --key-id " + key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := Advise(tc.st, tc.rem, period, 7)
			text := n.Wait + "|" + n.Warning + "|" + strings.Join(n.Commands, "|")
			if n.Ready != tc.ready || !strings.Contains(text, tc.want) {
				t.Errorf("advice %+v, want ready=%v and %q", n, tc.ready, tc.want)
			}
			if !tc.ready && strings.Contains(text, "schedule-key-deletion") {
				t.Errorf("deletion proposed before its time: %+v", n)
			}
		})
	}
}

type fakeKMS struct {
	KMSAPI
	disabled int
}

func (f *fakeKMS) DisableKey(context.Context, *kms.DisableKeyInput, ...func(*kms.Options)) (*kms.DisableKeyOutput, error) {
	f.disabled++
	return &kms.DisableKeyOutput{}, nil
}

type fakeStore struct {
	RecordStore
	puts int
}

func (f *fakeStore) PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f.puts++
	return &s3.PutObjectOutput{}, nil
}

// Disable refuses, without calling DisableKey, while a version is under
// the key, of unknown key, or newer than the table and unread.
func TestDisableRefusesUnlessClear(t *testing.T) {
	for _, tc := range []struct {
		name string
		rem  Remaining
		ok   bool
	}{
		{"clear", Remaining{KeyARN: key}, true},
		{"under it", Remaining{KeyARN: key, Under: map[string]int64{"b": 1}}, false},
		{"unknown key", Remaining{KeyARN: key, Unknown: map[string]int64{"b": 1}}, false},
		{"newer than the table", Remaining{KeyARN: key, Unseen: map[string]int64{"b": 1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, s := &fakeKMS{}, &fakeStore{}
			_, err := Disable(context.Background(), k, s, Location{Bucket: "r"}, tc.rem, "s3://r/e", time.Now())
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrNotClear) {
				t.Fatalf("err %v", err)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.ok]; k.disabled != want || s.puts != want {
				t.Errorf("DisableKey %d times, records %d; want %d", k.disabled, s.puts, want)
			}
		})
	}
}

func TestAssessCountsEveryVersionUnderTheKey(t *testing.T) {
	res := &verify.Result{Buckets: []*verify.Bucket{
		{Bucket: "a", ByKey: []verify.KeyCount{{Key: key, Versions: 2}, {Key: "other", Versions: 5}},
			Listed: []verify.Version{{Key: "x", KMSKeyARN: key}, {Key: "y", KMSKeyARN: "other"}}},
		{Bucket: "b", ByKey: []verify.KeyCount{{Key: verify.Unknown, Versions: 1}}, Recent: []verify.Version{{Key: "new"}, {Key: "gone", Reason: "delete marker"}}},
	}}
	r := Assess(res, key)
	if r.Under["a"] != 2 || r.Unknown["b"] != 1 || r.Unseen["b"] != 1 || len(r.Versions) != 1 || r.Clear() {
		t.Fatalf("%+v", r)
	}
}
