package inventory

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
)

// GetObjectAPI reads inventory files (never data objects).
type GetObjectAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var _ GetObjectAPI = (*s3.Client)(nil)

// Fetch downloads a data file into a temporary file in dir (the system
// default when empty), computing its MD5 on the way, and returns it opened
// and rewound only when the MD5 matches. The caller closes and removes it.
func Fetch(ctx context.Context, api GetObjectAPI, bucket, key, wantMD5, dir string) (*os.File, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ExpectedBucketOwner: bucketowner.Of(api)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	f, err := os.CreateTemp(dir, "s3rekey-inventory-*")
	if err != nil {
		return nil, fmt.Errorf("temporary file for s3://%s/%s: %w", bucket, key, err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	h := md5.New()
	if _, err := io.Copy(io.MultiWriter(f, h), out.Body); err != nil {
		return fail(fmt.Errorf("download s3://%s/%s: %w", bucket, key, err))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(wantMD5) {
		return fail(fmt.Errorf("s3://%s/%s: %w: MD5 is %s, the manifest says %s", bucket, key, ErrChecksum, got, wantMD5))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, nil
}

// ReadSmall reads a small inventory object (manifest.json, manifest.checksum)
// of at most limit bytes.
func ReadSmall(ctx context.Context, api GetObjectAPI, bucket, key string, limit int64) ([]byte, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ExpectedBucketOwner: bucketowner.Of(api)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("s3://%s/%s is larger than %d bytes", bucket, key, limit)
	}
	return b, nil
}
