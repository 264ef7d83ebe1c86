package rekey_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/policy"
	"github.com/s3rekey/s3rekey/internal/rekey"
	"github.com/s3rekey/s3rekey/internal/witness"
)

func TestMain(m *testing.M) { witness.Main(m) }

// noUpdates refuses UpdateObjectEncryption: moto would treat it as a
// PutObject and overwrite the object, so a copy test never sends one.
type noUpdates struct {
	*s3.Client
	t *testing.T
}

func (n noUpdates) UpdateObjectEncryption(context.Context, *s3.UpdateObjectEncryptionInput, ...func(*s3.Options)) (*s3.UpdateObjectEncryptionOutput, error) {
	n.t.Fatal("UpdateObjectEncryption sent in a copy test")
	return nil, nil
}

// copyBed is a bucket opted in to copies, with ACLs disabled, on a witness.
type copyBed struct {
	w       witness.Witness
	bucket  string
	target  string
	rekeyer *rekey.Rekeyer
}

func newCopyBed(t *testing.T, w witness.Witness, copier *rekey.Copier, edit func(*rekey.Copier, *s3.Client) rekey.CopyAPI) *copyBed {
	t.Helper()
	ctx := context.Background()
	b := &copyBed{w: w, bucket: witness.Name("legacy"), target: w.Key(t)}
	if _, err := w.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.S3.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{Bucket: aws.String(b.bucket),
		OwnershipControls: &types.OwnershipControls{Rules: []types.OwnershipControlsRule{{ObjectOwnership: types.ObjectOwnershipBucketOwnerEnforced}}}}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(fmt.Sprintf(`{"buckets":{%q:{"kmsKeyArn":%q,"unsupportedSources":{"notEncrypted":"copy"}}}}`, b.bucket, b.target)))
	if err != nil {
		t.Fatal(err)
	}
	api := rekey.CopyAPI(w.S3)
	if edit != nil {
		api = edit(copier, w.S3)
	}
	copier.API = api
	b.rekeyer = &rekey.Rekeyer{Head: api, Update: noUpdates{w.S3, t}, Policy: pol, Copier: copier}
	return b
}

// put stores an unencrypted object (as S3 stored them before 2023; moto
// stores an object without SSE headers unencrypted).
func (b *copyBed) put(t *testing.T, key, body string, edit func(*s3.PutObjectInput)) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}
	if edit != nil {
		edit(in)
	}
	var opts []func(*s3.Options)
	if !b.w.IsMoto() {
		opts = append(opts, emulator.LegacyUnencrypted)
	}
	if _, err := b.w.S3.PutObject(context.Background(), in, opts...); err != nil {
		t.Fatalf("PutObject %q: %v", key, err)
	}
}

func (b *copyBed) read(t *testing.T, key string) (string, *s3.HeadObjectOutput) {
	t.Helper()
	ctx := context.Background()
	out, err := b.w.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %q: %v", key, err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	h, err := b.w.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HeadObject %q: %v", key, err)
	}
	return string(body), h
}

func (b *copyBed) onTarget(h *s3.HeadObjectOutput) bool {
	return h.ServerSideEncryption == types.ServerSideEncryptionAwsKms && aws.ToString(h.SSEKMSKeyId) == b.target
}
