package emulator_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/s3rekey/s3rekey/internal/emulator"
	"github.com/s3rekey/s3rekey/internal/emulator/emutest"
)

// crc32b64 is the base64 CRC32 S3 reports, computed here independently of
// the emulator.
func crc32Raw(b []byte) []byte {
	out := make([]byte, 4)
	binary.BigEndian.PutUint32(out, crc32.ChecksumIEEE(b))
	return out
}

// A 20 MB object uploaded in three parts (8 MiB, 8 MiB, the rest) with
// CRC32 checksums, read back, and then re-encrypted: S3's multipart ETag
// is the MD5 of the parts' MD5s with "-3", the composite checksum the
// CRC32 of the parts' CRC32s with "-3" (userguide checking-object-integrity,
// "Using part-level checksums for multipart uploads"), and
// UpdateObjectEncryption keeps ETag, checksum, parts and bytes.
func TestMultipartRoundTripAndUpdateObjectEncryption(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Versioned(t, "mpu")
	target := e.Key(t)
	url, arn := e.Queue(t, "events", nil)
	if _, err := e.S3.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{Bucket: aws.String("mpu"),
		NotificationConfiguration: &types.NotificationConfiguration{QueueConfigurations: []types.QueueConfiguration{
			{QueueArn: aws.String(arn), Events: []types.Event{"s3:ObjectCreated:*"}}}}}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 20_000_000)
	_, _ = rand.Read(data)
	sizes := []int{8 << 20, 8 << 20, len(data) - 16<<20}

	create, err := e.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32, ContentType: aws.String("application/x-test"), Metadata: map[string]string{"m": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	var md5s, crcs []byte
	off := 0
	for i, n := range sizes {
		chunk := data[off : off+n]
		off += n
		sum := md5.Sum(chunk)
		md5s = append(md5s, sum[:]...)
		crcs = append(crcs, crc32Raw(chunk)...)
		out, err := e.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"), UploadId: create.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
	}
	parts, err := e.S3.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"), UploadId: create.UploadId})
	if err != nil || len(parts.Parts) != 3 || aws.ToInt64(parts.Parts[2].Size) != int64(sizes[2]) {
		t.Fatalf("ListParts: %+v %v", parts, err)
	}
	uploads, err := e.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(uploads.Uploads) != 1 || aws.ToString(uploads.Uploads[0].UploadId) != aws.ToString(create.UploadId) {
		t.Fatalf("ListMultipartUploads: %+v %v", uploads, err)
	}
	complete, err := e.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"),
		UploadId: create.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	etagSum := md5.Sum(md5s)
	wantETag := fmt.Sprintf(`"%s-3"`, hex.EncodeToString(etagSum[:]))
	wantChecksum := base64.StdEncoding.EncodeToString(crc32Raw(crcs)) + "-3"
	if aws.ToString(complete.ETag) != wantETag || aws.ToString(complete.ChecksumCRC32) != wantChecksum || complete.ChecksumType != types.ChecksumTypeComposite {
		t.Errorf("complete: ETag %s checksum %s %s; want %s %s COMPOSITE", aws.ToString(complete.ETag), aws.ToString(complete.ChecksumCRC32),
			complete.ChecksumType, wantETag, wantChecksum)
	}

	read := func() (*s3.GetObjectOutput, []byte) {
		out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return out, b
	}
	head, body := read()
	if !bytes.Equal(body, data) || aws.ToString(head.ETag) != wantETag || aws.ToString(head.ChecksumCRC32) != wantChecksum ||
		aws.ToString(head.ContentType) != "application/x-test" || head.Metadata["m"] != "v" {
		t.Errorf("read back: %d bytes (equal %v), ETag %s, checksum %s, type %s, metadata %v", len(body), bytes.Equal(body, data),
			aws.ToString(head.ETag), aws.ToString(head.ChecksumCRC32), aws.ToString(head.ContentType), head.Metadata)
	}
	second, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	part2, _ := io.ReadAll(second.Body)
	second.Body.Close()
	if !bytes.Equal(part2, data[sizes[0]:sizes[0]+sizes[1]]) || aws.ToInt32(second.PartsCount) != 3 {
		t.Errorf("GetObject partNumber=2: %d bytes, parts count %d", len(part2), aws.ToInt32(second.PartsCount))
	}
	if _, err := e.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"), PartNumber: aws.Int32(4)}); status(err) != 416 {
		t.Errorf("HEAD partNumber=4 of 3: %v, want 416", err)
	}

	// UpdateObjectEncryption changes the key and nothing else.
	before, _ := e.Emu.Inspect("mpu", "big.bin", "")
	if _, err := e.S3.UpdateObjectEncryption(ctx, &s3.UpdateObjectEncryptionInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"),
		ObjectEncryption: &types.ObjectEncryptionMemberSSEKMS{Value: types.SSEKMSEncryption{KMSKeyArn: aws.String(target)}}}); err != nil {
		t.Fatal(err)
	}
	after, _ := e.Emu.Inspect("mpu", "big.bin", "")
	head, body = read()
	attrs, err := e.S3.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: aws.String("mpu"), Key: aws.String("big.bin"),
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesChecksum, types.ObjectAttributesObjectParts,
			types.ObjectAttributesObjectSize}})
	if err != nil {
		t.Fatal(err)
	}
	if after.KMSKeyARN != target || !bytes.Equal(after.Ciphertext, before.Ciphertext) || after.ETag != before.ETag || after.Checksum != before.Checksum ||
		!bytes.Equal(body, data) || aws.ToString(head.ETag) != wantETag || aws.ToString(head.ChecksumCRC32) != wantChecksum ||
		head.ChecksumType != types.ChecksumTypeComposite {
		t.Errorf("after UpdateObjectEncryption: key %s, ETag %s, checksum %s %s, bytes equal %v", after.KMSKeyARN, aws.ToString(head.ETag),
			aws.ToString(head.ChecksumCRC32), head.ChecksumType, bytes.Equal(body, data))
	}
	if `"`+aws.ToString(attrs.ETag)+`"` != wantETag || attrs.ObjectParts == nil || aws.ToInt32(attrs.ObjectParts.TotalPartsCount) != 3 ||
		aws.ToInt64(attrs.ObjectSize) != int64(len(data)) || attrs.Checksum == nil || aws.ToString(attrs.Checksum.ChecksumCRC32) != wantChecksum {
		t.Errorf("GetObjectAttributes after the update: %+v", attrs)
	}

	// Its one Object Created event says CompleteMultipartUpload (beside
	// the s3:TestEvent of the configuration).
	msgs, err := e.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	for _, m := range msgs.Messages {
		if body := aws.ToString(m.Body); strings.Contains(body, "ObjectCreated") {
			created = append(created, body)
		}
	}
	if len(created) != 1 || !strings.Contains(created[0], `"eventName":"ObjectCreated:CompleteMultipartUpload"`) {
		t.Errorf("Object Created events %v", created)
	}
}

// The multipart rules: parts in ascending order, each listed part as
// uploaded, every part but the last at least 5 MiB; an aborted upload is
// gone; UploadPartCopy copies a range of another object.
func TestMultipartRules(t *testing.T) {
	e := emutest.Start(t, emulator.Options{})
	ctx := context.Background()
	e.Bucket(t, "mpu", false)
	small := bytes.Repeat([]byte("s"), 1<<20)
	big := bytes.Repeat([]byte("b"), 5<<20)
	e.Put(t, &s3.PutObjectInput{Bucket: aws.String("mpu"), Key: aws.String("source")}, string(big)+"tail")
	start := func() *string {
		out, err := e.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		return out.UploadId
	}
	put := func(id *string, n int32, b []byte) types.CompletedPart {
		out, err := e.S3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: id, PartNumber: aws.Int32(n),
			Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatal(err)
		}
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag}
	}
	complete := func(id *string, parts ...types.CompletedPart) error {
		_, err := e.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: id,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	id := start()
	p1, p2 := put(id, 1, small), put(id, 2, small)
	if err := complete(id, p1, p2); code(err) != "EntityTooSmall" {
		t.Errorf("a 1 MiB first part: %v, want EntityTooSmall", err)
	}
	if err := complete(id, p2, p1); code(err) != "InvalidPartOrder" {
		t.Errorf("parts out of order: %v, want InvalidPartOrder", err)
	}
	if err := complete(id, types.CompletedPart{PartNumber: aws.Int32(1), ETag: aws.String(`"0000"`)}); code(err) != "InvalidPart" {
		t.Errorf("a wrong ETag: %v, want InvalidPart", err)
	}
	if _, err := e.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: id}); err != nil {
		t.Fatal(err)
	}
	if err := complete(id, p1); code(err) != "NoSuchUpload" {
		t.Errorf("after abort: %v, want NoSuchUpload", err)
	}

	id = start()
	copied, err := e.S3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("mpu"), Key: aws.String("k"), UploadId: id, PartNumber: aws.Int32(1),
		CopySource: aws.String("mpu/source"), CopySourceRange: aws.String(fmt.Sprintf("bytes=0-%d", len(big)-1))})
	if err != nil {
		t.Fatal(err)
	}
	last := put(id, 2, small)
	if err := complete(id, types.CompletedPart{PartNumber: aws.Int32(1), ETag: copied.CopyPartResult.ETag}, last); err != nil {
		t.Fatal(err)
	}
	out, err := e.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, append(append([]byte(nil), big...), small...)) || !strings.HasSuffix(aws.ToString(out.ETag), `-2"`) {
		t.Errorf("copied part + uploaded part: %d bytes, ETag %s", len(got), aws.ToString(out.ETag))
	}

	// Encryption is chosen at create time and applied to the assembled
	// object as to a single PUT.
	key := e.Key(t)
	kmsUpload, err := e.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k"),
		ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(key), BucketKeyEnabled: aws.Bool(true)})
	if err != nil || kmsUpload.ServerSideEncryption != types.ServerSideEncryptionAwsKms {
		t.Fatalf("create under SSE-KMS: %+v %v", kmsUpload, err)
	}
	if err := complete(kmsUpload.UploadId, put(kmsUpload.UploadId, 1, small)); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.Emu.Inspect("mpu", "k", ""); st.Encryption != "SSE-KMS" || st.KMSKeyARN != key || !st.BucketKey {
		t.Errorf("assembled object is %s %s bucketKey=%v, want SSE-KMS under %s with a bucket key", st.Encryption, st.KMSKeyARN, st.BucketKey, key)
	}
}
