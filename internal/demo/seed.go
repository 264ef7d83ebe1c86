package demo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/emulator"
)

// kinds of seeded objects, one per index modulo len(kinds).
var kinds = []string{"SSE-S3", "SSE-S3", "SSE-S3", "SSE-S3", "SSE-S3", "SSE-S3", "SSE-S3",
	"SSE-KMS old key", "SSE-KMS old key", "SSE-KMS target", "SSE-KMS target, no bucket key", "NOT-SSE", "SSE-C", "DSSE-KMS",
	"two versions", "deleted", "excluded prefix", "governance retention", "legal hold", "lock bucket, unlocked",
	"legacy, copied", "legacy, archived"}

var folders = []string{"reports/Q4 2025", "photos/été+hiver", "logs/日本", "exports/a+b=c", "data/plain"}

// seed uploads the mix with a few workers and returns objects and versions.
func (d *demo) seed(ctx context.Context) (objects, versions int, err error) {
	var nVersions atomic.Int64
	var firstErr error
	var once sync.Once
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				n, err := d.seedOne(ctx, i)
				if err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				nVersions.Add(int64(n))
			}
		}()
	}
	for i := range d.opts.Objects {
		jobs <- i
		if (i+1)%max(1, d.opts.Objects/4) == 0 {
			d.say("  seeding: %d/%d objects", i+1, d.opts.Objects)
		}
	}
	close(jobs)
	wg.Wait()
	return d.opts.Objects, int(nVersions.Load()), firstErr
}

// seedOne writes object i and returns how many versions it made.
func (d *demo) seedOne(ctx context.Context, i int) (int, error) {
	kind := kinds[i%len(kinds)]
	bucket := DataBucket
	key := fmt.Sprintf("%s/%06d %s.dat", folders[i%len(folders)], i, kind)
	in := &s3.PutObjectInput{Body: bytes.NewReader([]byte(fmt.Sprintf("demo object %d (%s)", i, kind)))}
	var opts []func(*s3.Options)
	switch kind {
	case "SSE-KMS old key":
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(d.oldKey)
	case "SSE-KMS target":
		in.ServerSideEncryption, in.SSEKMSKeyId, in.BucketKeyEnabled = types.ServerSideEncryptionAwsKms, aws.String(d.target), aws.Bool(true)
	case "SSE-KMS target, no bucket key":
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKms, aws.String(d.target)
	case "NOT-SSE":
		opts = append(opts, emulator.LegacyUnencrypted)
	case "SSE-C":
		sum := md5.Sum(d.customer)
		in.SSECustomerAlgorithm, in.SSECustomerKey = aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(d.customer))
		in.SSECustomerKeyMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
	case "DSSE-KMS":
		in.ServerSideEncryption, in.SSEKMSKeyId = types.ServerSideEncryptionAwsKmsDsse, aws.String(d.oldKey)
	case "excluded prefix":
		key = fmt.Sprintf("scratch/%06d tmp.dat", i)
	case "governance retention":
		bucket = LockedBucket
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockModeGovernance, aws.Time(time.Now().Add(24*time.Hour))
	case "legal hold":
		bucket = LockedBucket
		in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
	case "lock bucket, unlocked":
		bucket = LockedBucket
	case "legacy, copied":
		bucket, opts = LegacyBucket, append(opts, emulator.LegacyUnencrypted)
		in.Metadata, in.ContentType, in.Tagging = map[string]string{"source": "demo"}, aws.String("text/plain"), aws.String("era=pre-2023")
		d.copies.Add(1)
	case "legacy, archived":
		bucket, opts = LegacyBucket, append(opts, emulator.LegacyUnencrypted)
		in.StorageClass = types.StorageClassGlacier
	}
	in.Bucket, in.Key = aws.String(bucket), aws.String(key)
	if _, err := d.s3.PutObject(ctx, in, opts...); err != nil {
		return 0, fmt.Errorf("seed %s/%s: %w", bucket, key, err)
	}
	switch kind {
	case "legacy, copied":
		// An annotation, which the copy keeps (and needs permission for).
		if _, err := d.s3.PutObjectAnnotation(ctx, &s3.PutObjectAnnotationInput{Bucket: aws.String(bucket), Key: aws.String(key),
			AnnotationName: aws.String("review"), AnnotationPayload: strings.NewReader(`{"reviewed":"2026"}`)}); err != nil {
			return 0, fmt.Errorf("annotate %s/%s: %w", bucket, key, err)
		}
	case "two versions":
		if _, err := d.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("second version"))}); err != nil {
			return 0, err
		}
		return 2, nil
	case "deleted":
		if _, err := d.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			return 0, err
		}
		return 2, nil // the version and its delete marker
	}
	return 1, nil
}

// snapshot records what must not change of every stored version.
func (d *demo) snapshot() {
	for _, bucket := range []string{DataBucket, LockedBucket, LegacyBucket} {
		for _, v := range d.emu.Versions(bucket) {
			if v.DeleteMarker {
				continue
			}
			d.before[bucket+"/"+v.Key+"@"+v.VersionID] = fingerprintOf(v)
		}
	}
}

func fingerprintOf(v emulator.ObjectState) fingerprint {
	return fingerprint{ETag: v.ETag, VersionID: v.VersionID, LastModified: v.LastModified, Ciphertext: sha256.Sum256(v.Ciphertext)}
}

// publishInventories turns on EventBridge delivery and publishes an
// inventory of each data bucket; it returns the rows they hold and the
// manifests' URLs.
func (d *demo) publishInventories(ctx context.Context) (int64, []string, error) {
	for _, b := range []string{DataBucket, LockedBucket, LegacyBucket, InventoryBucket} {
		if _, err := d.s3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String(b),
			NotificationConfiguration: &types.NotificationConfiguration{EventBridgeConfiguration: &types.EventBridgeConfiguration{}}}); err != nil {
			return 0, nil, err
		}
	}
	var rows int64
	var manifests []string
	for _, b := range []string{DataBucket, LockedBucket, LegacyBucket} {
		key, err := d.emu.PublishInventory(emulator.InventoryOptions{SourceBucket: b, DestinationBucket: InventoryBucket, Prefix: "inventory",
			Format: d.opts.Format, CurrentOnly: b != DataBucket, RowsPerFile: 1000})
		if err != nil {
			return 0, nil, err
		}
		manifests = append(manifests, "s3://"+InventoryBucket+"/"+key)
		n := int64(0)
		for _, v := range d.emu.Versions(b) {
			if b == DataBucket || v.IsLatest && !v.DeleteMarker {
				n++
			}
		}
		rows += n
		d.say("published a %s inventory of s3://%s (%d rows): s3://%s/%s", d.opts.Format, b, n, InventoryBucket, key)
	}
	return rows, manifests, nil
}
