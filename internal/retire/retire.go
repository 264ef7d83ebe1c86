// Package retire walks the documented path to retire a KMS key (KMS
// developer guide, deleting-keys: disable it, watch for use, then
// schedule its deletion): it checks from a verification that no object
// version is under the key, disables it and records when, reports its use
// since (GetKeyLastUsage), and writes out, never runs, the
// ScheduleKeyDeletion command once the key has been quiet long enough.
package retire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/verify"
)

// Remaining is what a verification found still under a key.
type Remaining struct {
	KeyARN string `json:"keyArn"`
	// Under counts versions under the key per bucket; Unknown versions
	// whose key the source did not give (SSE-KMS without an ARN).
	Under   map[string]int64 `json:"under"`
	Unknown map[string]int64 `json:"unknown"`
	// Versions are the versions under the key the result lists.
	Versions []BucketVersion `json:"versions"`
	// Unseen counts, per bucket, versions newer than the table whose key
	// was not read.
	Unseen map[string]int64 `json:"unseen"`
}

// BucketVersion is a version of a bucket.
type BucketVersion struct {
	Bucket string `json:"bucket"`
	verify.Version
}

// Clear reports that nothing is, or may be, under the key.
func (r Remaining) Clear() bool { return r.Total() == 0 && len(r.Unknown) == 0 && len(r.Unseen) == 0 }

// Total is the versions under the key.
func (r Remaining) Total() int64 {
	var n int64
	for _, c := range r.Under {
		n += c
	}
	return n
}

// Assess reads a verification for one key.
func Assess(res *verify.Result, keyARN string) Remaining {
	r := Remaining{KeyARN: keyARN, Under: map[string]int64{}, Unknown: map[string]int64{}, Unseen: map[string]int64{}}
	for _, b := range res.Buckets {
		under, unknown := b.VersionsUnder(keyARN)
		if under > 0 {
			r.Under[b.Bucket] = under
		}
		if unknown > 0 {
			r.Unknown[b.Bucket] = unknown
		}
		for _, v := range b.Listed {
			if v.KMSKeyARN == keyARN {
				r.Versions = append(r.Versions, BucketVersion{Bucket: b.Bucket, Version: v})
			}
		}
		if b.RecentKeysRead {
			continue // counted in ByKey
		}
		for _, v := range b.Recent {
			if v.Reason != "delete marker" {
				r.Unseen[b.Bucket]++
			}
		}
	}
	return r
}

// KMSAPI is what the retirement asks of KMS.
type KMSAPI interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	DisableKey(ctx context.Context, in *kms.DisableKeyInput, optFns ...func(*kms.Options)) (*kms.DisableKeyOutput, error)
	GetKeyLastUsage(ctx context.Context, in *kms.GetKeyLastUsageInput, optFns ...func(*kms.Options)) (*kms.GetKeyLastUsageOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// Record is what a retirement keeps at the report location.
type Record struct {
	KeyARN     string    `json:"keyArn"`
	DisabledAt time.Time `json:"disabledAt"`
	// Evidence is the evidence file that showed nothing under the key.
	Evidence string `json:"evidence"`
}

// RecordStore keeps records.
type RecordStore interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Location is where records live: the report bucket and prefix, and the
// key their objects are encrypted under.
type Location struct {
	Bucket, Prefix, KMSKey string
	// Owner is the account expected to own Bucket; every request names it.
	Owner string
}

func (l Location) key(keyARN string) string {
	id := keyARN[strings.LastIndex(keyARN, "/")+1:]
	p := strings.TrimSuffix(l.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return p + "retire/" + id + ".json"
}

// ErrNotClear refuses to disable a key with versions (possibly) under it.
var ErrNotClear = errors.New("versions are still under the key")

// Disable disables the key, after checking rem, and records when.
func Disable(ctx context.Context, api KMSAPI, store RecordStore, loc Location, rem Remaining, evidence string, now time.Time) (Record, error) {
	if !rem.Clear() {
		return Record{}, fmt.Errorf("refusing to disable %s: %w (%s)", rem.KeyARN, ErrNotClear, rem.Summary())
	}
	if _, err := api.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(rem.KeyARN)}); err != nil {
		return Record{}, fmt.Errorf("disable %s: %w", rem.KeyARN, err)
	}
	rec := Record{KeyARN: rem.KeyARN, DisabledAt: now.UTC(), Evidence: evidence}
	body, _ := json.MarshalIndent(rec, "", "  ")
	in := &s3.PutObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.key(rem.KeyARN)), Body: bytes.NewReader(body), ExpectedBucketOwner: bucketowner.Named(loc.Owner),
		ContentType: aws.String("application/json")}
	if loc.KMSKey != "" {
		in.ServerSideEncryption, in.SSEKMSKeyId = s3types.ServerSideEncryptionAwsKms, aws.String(loc.KMSKey)
	}
	if _, err := store.PutObject(ctx, in); err != nil {
		return rec, fmt.Errorf("%s is disabled, but recording when failed (disabled at %s): %w", rem.KeyARN, rec.DisabledAt.Format(time.RFC3339), err)
	}
	return rec, nil
}

// Summary names the buckets and counts.
func (r Remaining) Summary() string {
	var parts []string
	for _, b := range sortedKeys(r.Under) {
		parts = append(parts, fmt.Sprintf("%d under it in s3://%s", r.Under[b], b))
	}
	for _, b := range sortedKeys(r.Unknown) {
		parts = append(parts, fmt.Sprintf("%d SSE-KMS of unknown key in s3://%s", r.Unknown[b], b))
	}
	for _, b := range sortedKeys(r.Unseen) {
		parts = append(parts, fmt.Sprintf("%d newer than the table, key not read, in s3://%s", r.Unseen[b], b))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Status is a disabled key's watch.
type Status struct {
	KeyARN       string     `json:"keyArn"`
	State        string     `json:"state"`
	DeletionDate *time.Time `json:"deletionDate,omitempty"`
	Record       *Record    `json:"record,omitempty"`
	// LastUsed is GetKeyLastUsage's last successful cryptographic use.
	LastUsed      *time.Time `json:"lastUsed,omitempty"`
	LastOperation string     `json:"lastOperation,omitempty"`
	// UsedSinceDisabled says the key was used after it was disabled.
	UsedSinceDisabled bool `json:"usedSinceDisabled"`
	// QuietSince is when the key was last used or disabled, whichever is
	// later; Quiet how long ago that is.
	QuietSince time.Time     `json:"quietSince"`
	Quiet      time.Duration `json:"quiet"`
	// LastUsageUnavailable says GetKeyLastUsage could not answer; use
	// CloudTrail (CloudTrailCommand).
	LastUsageUnavailable string `json:"lastUsageUnavailable,omitempty"`
	CloudTrailCommand    string `json:"cloudTrailCommand"`
}

// ReadStatus reads the key's state, its retirement record and last use.
func ReadStatus(ctx context.Context, api KMSAPI, store RecordStore, loc Location, keyARN string, now time.Time) (Status, error) {
	st := Status{KeyARN: keyARN}
	d, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		return st, fmt.Errorf("describe %s: %w", keyARN, err)
	}
	st.State, st.DeletionDate = string(d.KeyMetadata.KeyState), d.KeyMetadata.DeletionDate
	rec, err := readRecord(ctx, store, loc, keyARN)
	if err != nil {
		return st, err
	}
	st.Record = rec
	since := aws.ToTime(d.KeyMetadata.CreationDate)
	if rec != nil {
		since = rec.DisabledAt
	}
	st.CloudTrailCommand = fmt.Sprintf("aws cloudtrail lookup-events --lookup-attributes AttributeKey=ResourceName,AttributeValue=%s --start-time %s",
		keyARN, since.UTC().Format(time.RFC3339))
	st.QuietSince = since
	lu, err := api.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(keyARN)})
	switch {
	case err != nil:
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			return st, fmt.Errorf("last usage of %s: %w", keyARN, err)
		}
		// Not in every region or partition: CloudTrail is the record (the
		// API reference of GetKeyLastUsage calls it authoritative).
		st.LastUsageUnavailable = ae.ErrorCode() + ": " + ae.ErrorMessage()
	case lu.KeyLastUsage != nil && lu.KeyLastUsage.Timestamp != nil:
		t := lu.KeyLastUsage.Timestamp.UTC()
		st.LastUsed, st.LastOperation = &t, string(lu.KeyLastUsage.Operation)
		if rec != nil && t.After(rec.DisabledAt) {
			st.UsedSinceDisabled = true
		}
		if t.After(st.QuietSince) {
			st.QuietSince = t
		}
	}
	st.Quiet = now.Sub(st.QuietSince)
	return st, nil
}

func readRecord(ctx context.Context, store RecordStore, loc Location, keyARN string) (*Record, error) {
	out, err := store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(loc.Bucket), Key: aws.String(loc.key(keyARN)), ExpectedBucketOwner: bucketowner.Named(loc.Owner)})
	if err != nil {
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("read the retirement record of %s: %w", keyARN, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read the retirement record of %s: %w", keyARN, err)
	}
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return nil, fmt.Errorf("the retirement record of %s: %w", keyARN, err)
	}
	return &rec, nil
}

// Next is what to do after a status, as commands to run by hand.
type Next struct {
	// Ready says the key has been disabled and quiet for the period.
	Ready    bool     `json:"ready"`
	Wait     string   `json:"wait,omitempty"`
	Commands []string `json:"commands"`
	Warning  string   `json:"warning,omitempty"`
}

// Advise says what comes next: the ScheduleKeyDeletion command once the
// key has been disabled and quiet for the period, never run here; the
// commands to cancel a deletion and re-key when versions are still under
// a key pending deletion.
func Advise(st Status, rem Remaining, quietPeriod time.Duration, waitingDays int) Next {
	var n Next
	if st.State == string(kmstypes.KeyStatePendingDeletion) && !rem.Clear() {
		n.Warning = fmt.Sprintf("%s is pending deletion (on %s) with versions still under it: %s. They are lost when it is deleted.",
			st.KeyARN, fmtTime(st.DeletionDate), rem.Summary())
		n.Commands = append(n.Commands,
			"aws kms cancel-key-deletion --key-id "+st.KeyARN,
			"aws kms enable-key --key-id "+st.KeyARN)
		for _, b := range sortedKeys(rem.Under) {
			n.Commands = append(n.Commands, "s3rekey backfill --bucket "+b+" --versions --control-queue s3rekey-control")
		}
		return n
	}
	switch {
	case st.State != string(kmstypes.KeyStateDisabled):
		n.Wait = "the key is " + st.State + ": disable it first (s3rekey retire-key --disable)"
	case !rem.Clear():
		n.Wait = "versions are under the key again: " + rem.Summary()
	case st.UsedSinceDisabled:
		n.Wait = fmt.Sprintf("the key was used (%s) after it was disabled: find the caller in CloudTrail", st.LastOperation)
	case st.Quiet < quietPeriod:
		n.Wait = fmt.Sprintf("quiet for %s of the %s asked for", st.Quiet.Round(time.Minute), quietPeriod)
	default:
		n.Ready = true
		n.Commands = append(n.Commands, fmt.Sprintf("aws kms schedule-key-deletion --key-id %s --pending-window-in-days %d", st.KeyARN, waitingDays))
	}
	return n
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "an unknown date"
	}
	return t.UTC().Format(time.RFC3339)
}
