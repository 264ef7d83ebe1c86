package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

const demoUsage = `Usage: s3rekey demo [flags]

Starts the emulator in-process, uploads a mix of objects (SSE-S3, SSE-KMS
under an old key, legacy unencrypted, SSE-C, under Object Lock), brings every
one that can be brought onto a new KMS key with UpdateObjectEncryption, and
verifies from the stored bytes that no object body was rewritten. No AWS
account is needed. Exit code 1 means verification failed.

This version calls UpdateObjectEncryption directly; the queue-driven
pipeline (planner + encrypt functions) replaces that loop as it lands.

Examples:
  s3rekey demo
  s3rekey demo --objects 2000
`

// demoObject is one seeded object and the outcome the demo expects of it.
type demoObject struct {
	key    string
	kind   string // how it was written
	expect string // "updated" or the InvalidRequest/AccessDenied code expected
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", demoUsage, stderr)
	objects := fs.Int("objects", 200, "number of SSE-S3 objects to seed besides the special cases")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *objects < 1 || *objects > 1_000_000 {
		return usageError{fmt.Errorf("--objects must be from 1 to 1000000, not %d", *objects)}
	}
	emu, err := emulator.Start(ctx, emulator.Options{})
	if err != nil {
		return err
	}
	defer emu.Close()
	cfg := emu.AWSConfig()
	s3c := s3.NewFromConfig(cfg, emulator.PathStyle)
	kmsc := kms.NewFromConfig(cfg)
	fmt.Fprintf(stdout, "emulator at %s\n", emu.URL())

	oldKey, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("old key")})
	if err != nil {
		return fmt.Errorf("create old key: %w", err)
	}
	target, err := kmsc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("target key")})
	if err != nil {
		return fmt.Errorf("create target key: %w", err)
	}
	targetARN := aws.ToString(target.KeyMetadata.Arn)
	const bucket = "demo-data"
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}

	seeded, err := seedDemo(ctx, s3c, bucket, aws.ToString(oldKey.KeyMetadata.Arn), *objects)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d objects in s3://%s\n", len(seeded), bucket)

	before := map[string]emulator.ObjectState{}
	for _, o := range seeded {
		st, _ := emu.Inspect(bucket, o.key, "")
		before[o.key] = st
	}
	outcomes := map[string]int{}
	var failures []string
	for i, o := range seeded {
		_, err := s3c.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{
			Bucket: aws.String(bucket), Key: aws.String(o.key), ExpectedBucketOwner: aws.String(emu.Account()),
			ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{
				KMSKeyArn: aws.String(targetARN), BucketKeyEnabled: aws.Bool(true)}},
		})
		got := "updated"
		var ae smithy.APIError
		if errors.As(err, &ae) {
			got = ae.ErrorCode()
		} else if err != nil {
			return fmt.Errorf("UpdateObjectEncryption %s: %w", o.key, err)
		}
		outcomes[o.kind+" → "+got]++
		if got != o.expect {
			failures = append(failures, fmt.Sprintf("%s (%s): got %s, want %s", o.key, o.kind, got, o.expect))
		}
		if (i+1)%max(1, len(seeded)/10) == 0 {
			fmt.Fprintf(stdout, "  %d/%d objects\n", i+1, len(seeded))
		}
	}
	failures = append(failures, verifyDemo(emu, bucket, targetARN, seeded, before)...)

	fmt.Fprintln(stdout, "\nOutcomes")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, k := range sortedKeys(outcomes) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, outcomes[k])
	}
	_ = tw.Flush()
	fmt.Fprintln(stdout, "\nRequests by service and operation")
	for _, c := range emu.Counts() {
		if c.Bucket == "" || c.Service == "s3" {
			continue
		}
		fmt.Fprintf(tw, "  %s %s (by S3 for s3://%s)\t%d\n", c.Service, c.Operation, c.Bucket, c.N)
	}
	totals := map[string]int64{}
	for _, c := range emu.Counts() {
		if c.Service == "s3" || c.Bucket == "" {
			totals[c.Service+" "+c.Operation] += c.N
		}
	}
	for _, k := range sortedKeys(totals) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, totals[k])
	}
	_ = tw.Flush()
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Fprintln(stderr, "FAIL", f)
		}
		return fmt.Errorf("verification failed for %d objects", len(failures))
	}
	fmt.Fprintf(stdout, "\nverification passed: %d objects; every updated object is SSE-KMS under the target key with the same stored bytes, ETag and Last-Modified; GetObject calls: %d\n",
		len(seeded), emu.CountOf("s3", "GetObject", ""))
	return nil
}

func seedDemo(ctx context.Context, s3c *s3.Client, bucket, oldKeyARN string, n int) ([]demoObject, error) {
	customerKey := bytes.Repeat([]byte{7}, 32)
	special := []struct {
		obj  demoObject
		edit func(*s3.PutObjectInput)
		opts []func(*s3.Options)
	}{
		{demoObject{"legacy/unencrypted.txt", "NOT-SSE", "InvalidRequest"}, nil, []func(*s3.Options){emulator.LegacyUnencrypted}},
		{demoObject{"old-key/report.csv", "SSE-KMS (old key)", "updated"}, func(in *s3.PutObjectInput) {
			in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(oldKeyARN)
		}, nil},
		{demoObject{"customer key/secret.bin", "SSE-C", "InvalidRequest"}, func(in *s3.PutObjectInput) {
			in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), aws.String(b64(customerKey))
			in.SSECustomerKeyMD5 = aws.String(md5b64(customerKey))
		}, nil},
		{demoObject{"dual/layer.bin", "DSSE-KMS", "InvalidRequest"}, func(in *s3.PutObjectInput) {
			in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKmsDsse, aws.String(oldKeyARN)
		}, nil},
		{demoObject{"held/contract.pdf", "legal hold", "AccessDenied"}, func(in *s3.PutObjectInput) {
			in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
		}, nil},
	}
	var out []demoObject
	for _, sp := range special {
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(sp.obj.key), Body: bytes.NewReader([]byte("demo " + sp.obj.key))}
		if sp.edit != nil {
			sp.edit(in)
		}
		if _, err := s3c.PutObject(ctx, in, sp.opts...); err != nil {
			return nil, fmt.Errorf("seed %s: %w", sp.obj.key, err)
		}
		out = append(out, sp.obj)
	}
	for i := range n {
		key := fmt.Sprintf("data/part %04d+é.json", i)
		in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(fmt.Sprintf(`{"n":%d}`, i)))}
		if _, err := s3c.PutObject(ctx, in); err != nil {
			return nil, fmt.Errorf("seed %s: %w", key, err)
		}
		out = append(out, demoObject{key, "SSE-S3", "updated"})
	}
	return out, nil
}

// verifyDemo checks the store itself: updated objects are under the target
// key with their bytes untouched; the others did not change at all.
func verifyDemo(emu *emulator.Emulator, bucket, targetARN string, seeded []demoObject, before map[string]emulator.ObjectState) []string {
	var failures []string
	for _, o := range seeded {
		was, now := before[o.key], mustInspect(emu, bucket, o.key)
		if !bytes.Equal(was.Ciphertext, now.Ciphertext) || was.ETag != now.ETag || !was.LastModified.Equal(now.LastModified) || was.VersionID != now.VersionID {
			failures = append(failures, o.key+": stored bytes, ETag, Last-Modified or version changed")
		}
		if o.expect == "updated" && (now.Encryption != "SSE-KMS" || now.KMSKeyARN != targetARN || !now.BucketKey) {
			failures = append(failures, fmt.Sprintf("%s: is %s %s bucketKey=%v, want SSE-KMS under the target key", o.key, now.Encryption, now.KMSKeyARN, now.BucketKey))
		}
		if o.expect != "updated" && (now.Encryption != was.Encryption || now.KMSKeyARN != was.KMSKeyARN) {
			failures = append(failures, o.key+": encryption changed although the update was refused")
		}
	}
	return failures
}

func mustInspect(emu *emulator.Emulator, bucket, key string) emulator.ObjectState {
	st, _ := emu.Inspect(bucket, key, "")
	return st
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func md5b64(b []byte) string {
	sum := md5.Sum(b)
	return b64(sum[:])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
