package jobs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3rekey/s3rekey/internal/bucketowner"
	"github.com/s3rekey/s3rekey/internal/rekey"
)

// PutObjectAPI writes report files.
type PutObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// GetObjectAPI reads reports back: the CLI's report command, and a
// reopened job's completion, which drops the rows of redriven dead letters.
type GetObjectAPI interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// HeadObjectAPI reads a report manifest's metadata: a finished job's
// completion checks that its manifest.json lists what the job counts.
type HeadObjectAPI interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// ReportReader reads reports back.
type ReportReader interface {
	GetObjectAPI
	HeadObjectAPI
}

var (
	_ PutObjectAPI = (*s3.Client)(nil)
	_ ReportReader = (*s3.Client)(nil)
)

// metaStateDigest is the manifest's metadata naming what it lists.
const metaStateDigest = "state-digest"

// ReportSchema are the columns of a report part: S3 Batch Operations'
// completion report columns (batch-ops-examples-reports.md), then
// s3rekey's outcome and reason, and the dead letter an object failed into.
const ReportSchema = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage, Outcome, Reason, DeadLetterId"

// ReportFormat names the report's format in its manifest.
const ReportFormat = "s3rekey_Report_CSV_GZIP_1"

// Reports writes completion reports under s3://Bucket/Prefix/JOB/.
type Reports struct {
	API    PutObjectAPI
	Bucket string
	Prefix string
	// KMSKeyARN encrypts every report file (SSE-KMS with a bucket key).
	KMSKeyARN string
	// All lists every object; by default only those not updated (skipped,
	// failed, gone, rejected, and the would-be outcomes of a dry run).
	All bool
}

// Location is where a job's report goes.
func (r *Reports) Location(jobID string) string {
	return "s3://" + r.Bucket + "/" + r.dir(jobID)
}

func (r *Reports) dir(jobID string) string {
	p := strings.Trim(r.Prefix, "/")
	if p != "" {
		p += "/"
	}
	return p + jobID + "/"
}

// Wants reports whether an outcome is listed.
func (r *Reports) Wants(o rekey.Outcome) bool {
	if r == nil {
		return false
	}
	switch o.Status {
	case rekey.Updated, rekey.Copied, rekey.Compliant:
		return r.All
	}
	return true
}

// Row is one object's line in a report.
type Row struct {
	Bucket, Key, VersionID string
	Outcome                rekey.Outcome
	// DeadLetter is the id of the dead letter the object went to.
	DeadLetter string
}

func (row Row) record() []string {
	status, code, httpStatus := "succeeded", "", ""
	switch row.Outcome.Status {
	case rekey.Failed, rekey.Rejected:
		status, code = "failed", row.Outcome.Reason
	case rekey.Updated, rekey.Copied:
		httpStatus = "200"
	}
	// Keys are URL-encoded, as in S3 Inventory's and Batch Operations' CSV.
	return []string{row.Bucket, url.QueryEscape(row.Key), row.VersionID, status, code, httpStatus, row.Outcome.Detail,
		string(row.Outcome.Status), row.Outcome.Reason, row.DeadLetter}
}

// part is one written report file.
type part struct {
	Key  string `json:"Key"`
	MD5  string `json:"MD5Checksum"`
	Size int64  `json:"Size"`
	Rows int64  `json:"Rows"`
}

func (r *Reports) put(ctx context.Context, key, contentType string, body []byte, metadata map[string]string) (string, error) {
	sum := md5.Sum(body)
	_, err := r.API.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(key), Body: bytes.NewReader(body), ExpectedBucketOwner: bucketowner.Of(r.API),
		ContentType: aws.String(contentType), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:])), Metadata: metadata,
		ServerSideEncryption: s3types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(r.KMSKeyARN), BucketKeyEnabled: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("report s3://%s/%s: %w", r.Bucket, key, err)
	}
	return hex.EncodeToString(sum[:]), nil
}

// gzipWriters are reused across parts: a new gzip.Writer allocates its
// compressor's tables (about a megabyte), more than a part's bytes; one
// Reset writes the same bytes as a new one.
var gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// writePart writes one part (gzip CSV) and says what it wrote. Its key
// is the task's id and the MD5 of its bytes: a part is never overwritten
// with other bytes, so what a record says of its part (MD5, size, rows)
// stays true whoever writes it again.
func (r *Reports) writePart(ctx context.Context, jobID, name string, rows []Row) (part, error) {
	var buf bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&buf)
	w := csv.NewWriter(zw)
	for _, row := range rows {
		_ = w.Write(row.record()) // writes to memory cannot fail
	}
	w.Flush()
	_ = zw.Close()
	sum := md5.Sum(buf.Bytes())
	key := r.dir(jobID) + "parts/" + name + "-" + hex.EncodeToString(sum[:8]) + ".csv.gz"
	md5hex, err := r.put(ctx, key, "application/gzip", buf.Bytes(), nil)
	return part{Key: key, MD5: md5hex, Size: int64(buf.Len()), Rows: int64(len(rows))}, err
}

// Manifest is a report's manifest.json, after Batch Operations' (Format,
// ReportCreationDate, Results with Bucket, Key and MD5Checksum,
// ReportSchema).
type Manifest struct {
	Format             string           `json:"Format"`
	ReportCreationDate string           `json:"ReportCreationDate"`
	JobID              string           `json:"JobId"`
	Results            []ManifestResult `json:"Results"`
	ReportSchema       string           `json:"ReportSchema"`
	Rows               int64            `json:"Rows"`
	AllObjects         bool             `json:"AllObjects"`
	// StateDigest names the task records the report lists (see
	// jobs.Store.Get): a manifest with the job's digest is its report.
	StateDigest string `json:"StateDigest"`
	// JobState and JobStateReason say that the job failed or was cancelled
	// before every object had its outcome: the report lists what was done.
	JobState       string `json:"JobState,omitempty"`
	JobStateReason string `json:"JobStateReason,omitempty"`
}

// ManifestResult is one report file.
type ManifestResult struct {
	Bucket      string `json:"Bucket"`
	Key         string `json:"Key"`
	MD5Checksum string `json:"MD5Checksum"`
	Size        int64  `json:"Size"`
	Rows        int64  `json:"Rows"`
}

func (r *Reports) writeManifest(ctx context.Context, j *Job, now time.Time) (string, error) {
	jobID, parts, digest := j.ID, j.parts, j.digest
	m := Manifest{Format: ReportFormat, ReportCreationDate: now.UTC().Format("2006-01-02T15:04:05.000Z"), JobID: jobID,
		ReportSchema: ReportSchema, Results: []ManifestResult{}, AllObjects: r.All, StateDigest: digest}
	if j.Terminal() {
		m.JobState, m.JobStateReason = j.State, j.TerminalReason
	}
	for _, p := range parts {
		m.Results = append(m.Results, ManifestResult{Bucket: r.Bucket, Key: p.Key, MD5Checksum: p.MD5, Size: p.Size, Rows: p.Rows})
		m.Rows += p.Rows
	}
	body, _ := json.MarshalIndent(m, "", "  ")
	// hive/symlink.txt lists the same parts for Athena (SymlinkTextInputFormat),
	// as S3 Inventory does: parts a lost commit left behind are in neither.
	var links strings.Builder
	for _, p := range parts {
		links.WriteString("s3://" + r.Bucket + "/" + p.Key + "\n")
	}
	if _, err := r.put(ctx, r.dir(jobID)+"hive/symlink.txt", "text/plain", []byte(links.String()), nil); err != nil {
		return "", err
	}
	key := r.dir(jobID) + "manifest.json"
	_, err := r.put(ctx, key, "application/json", body, map[string]string{metaStateDigest: digest})
	return "s3://" + r.Bucket + "/" + key, err
}

// manifestLists reports whether the job's manifest.json is the report of
// the records digest names (a slower completion of fewer records may
// have written it last), from its metadata: no report is read.
func (r *Reports) manifestLists(ctx context.Context, api HeadObjectAPI, jobID, digest string) (bool, error) {
	if api == nil {
		return false, nil
	}
	out, err := api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(r.dir(jobID) + "manifest.json"),
		ExpectedBucketOwner: bucketowner.Of(r.API)})
	var nf *s3types.NotFound
	var nsk *s3types.NoSuchKey
	if errors.As(err, &nf) || errors.As(err, &nsk) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("report s3://%s/%smanifest.json: %w", r.Bucket, r.dir(jobID), err)
	}
	return out.Metadata[metaStateDigest] == digest, nil
}

// ReadPart decodes one report part.
func ReadPart(gz []byte) ([]Row, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		return nil, err
	}
	rows := make([]Row, len(recs))
	for i, rec := range recs {
		if len(rec) != 10 {
			return nil, fmt.Errorf("report row %d has %d columns, want 10", i+1, len(rec))
		}
		key, err := url.QueryUnescape(rec[1])
		if err != nil {
			return nil, fmt.Errorf("report row %d: key %q: %w", i+1, rec[1], err)
		}
		rows[i] = Row{Bucket: rec[0], Key: key, VersionID: rec[2], DeadLetter: rec[9],
			Outcome: rekey.Outcome{Status: rekey.Status(rec[7]), Reason: rec[8], Detail: rec[6]}}
	}
	return rows, nil
}

// CSVLine renders one row as a CSV line, as report parts hold it.
func CSVLine(row Row) string {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(row.record())
	w.Flush()
	return b.String()
}

// ReadReport reads a report's manifest and every part it lists.
func ReadReport(ctx context.Context, api GetObjectAPI, manifestURL string) ([]Row, error) {
	bucket, key, ok := strings.Cut(strings.TrimPrefix(manifestURL, "s3://"), "/")
	if !ok || !strings.HasPrefix(manifestURL, "s3://") {
		return nil, fmt.Errorf("report manifest %q is not an s3:// URL", manifestURL)
	}
	body, err := readObject(ctx, api, bucket, key)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("report manifest %s: %w", manifestURL, err)
	}
	var rows []Row
	for _, p := range m.Results {
		part, err := readPart(ctx, api, p.Bucket, p.Key)
		if err != nil {
			return nil, err
		}
		rows = append(rows, part...)
	}
	return rows, nil
}

func readPart(ctx context.Context, api GetObjectAPI, bucket, key string) ([]Row, error) {
	gz, err := readObject(ctx, api, bucket, key)
	if err != nil {
		return nil, err
	}
	rows, err := ReadPart(gz)
	if err != nil {
		return nil, fmt.Errorf("report part s3://%s/%s: %w", bucket, key, err)
	}
	return rows, nil
}

func readObject(ctx context.Context, api GetObjectAPI, bucket, key string) ([]byte, error) {
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), ExpectedBucketOwner: bucketowner.Of(api)})
	if err != nil {
		return nil, fmt.Errorf("report s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("report s3://%s/%s: %w", bucket, key, err)
	}
	return b, nil
}
