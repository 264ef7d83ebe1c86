package inventory

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/scritchley/orc"
)

// Open reads a verified data file of the given format. columns are the
// manifest's (Manifest.Columns).
func Open(format string, f *os.File, columns []string) (r Reader, err error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, c := range columns {
		present[c] = true
	}
	flags := Row{
		HasIsLatest: present["IsLatest"], HasEncryption: present["EncryptionStatus"], HasBucketKey: present["BucketKeyStatus"],
		HasLock: present["ObjectLockMode"] || present["ObjectLockLegalHoldStatus"],
	}
	switch format {
	case FormatCSV:
		return newCSVReader(f, columns, flags)
	case FormatParquet:
		return newParquetReader(f, info.Size(), flags)
	case FormatORC:
		return newORCReader(f, info.Size(), flags)
	}
	return nil, fmt.Errorf("inventory format %q is not CSV, Parquet or ORC", format)
}

// withFlags copies the Has* flags of a template into a row, and brings
// its enumerated values to one spelling. S3's own pages disagree on case
// (storage-inventory.md lists legal hold "On"/"Off" and retention modes
// "Governance"/"Compliance"; its examples and real reports write
// "COMPLIANCE", "true"/"false"), so every value is read case-insensitively.
func withFlags(r Row, flags Row) Row {
	r.EncryptionStatus = upper(r.EncryptionStatus)
	r.BucketKeyStatus = upper(r.BucketKeyStatus)
	r.LockMode = upper(r.LockMode)
	r.LegalHold = upper(r.LegalHold)
	r.HasIsLatest, r.HasEncryption, r.HasBucketKey, r.HasLock = flags.HasIsLatest, flags.HasEncryption, flags.HasBucketKey, flags.HasLock
	if !flags.HasIsLatest {
		r.IsLatest = true // an inventory of current versions only has no IsLatest column
	}
	return r
}

// upper upper-cases ASCII without allocating for a value already so.
func upper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			return strings.ToUpper(s)
		}
	}
	return s
}

// isTrue reads a CSV boolean in any case ("true", "True", "TRUE").
func isTrue(s string) bool { return strings.EqualFold(s, "true") }

// parseDate reads a CSV date as S3 writes it (ISO 8601), or as epoch
// milliseconds, the type ORC and Parquet reports carry for retain-until
// dates (storage-inventory-athena-query.md: object_lock_retain_until_date
// bigint).
func parseDate(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	return parseISOTime(s)
}

// csvField are the CSV columns s3rekey reads, resolved to record indexes
// once per file.
type csvField int

const (
	fBucket csvField = iota
	fKey
	fVersionID
	fIsLatest
	fIsDeleteMarker
	fSize
	fLastModified
	fETag
	fStorageClass
	fEncryption
	fRetainUntil
	fLockMode
	fLegalHold
	fBucketKey
	fieldCount
)

var csvFieldNames = [fieldCount]string{"Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag",
	"StorageClass", "EncryptionStatus", "ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus", "BucketKeyStatus"}

type csvReader struct {
	gz     *gzip.Reader
	csv    *csv.Reader
	index  [fieldCount]int // record index of each field, -1 when absent
	flags  Row
	rowNum int64
}

func newCSVReader(f io.Reader, columns []string, flags Row) (*csvReader, error) {
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("csv inventory is not gzip: %w", err)
	}
	c := csv.NewReader(gz)
	c.FieldsPerRecord = len(columns)
	c.ReuseRecord = true
	r := &csvReader{gz: gz, csv: c, flags: flags}
	for i := range r.index {
		r.index[i] = -1
	}
	for i, name := range columns {
		for f, want := range csvFieldNames {
			if name == want {
				r.index[f] = i
			}
		}
	}
	return r, nil
}

func (r *csvReader) Next() (Row, error) {
	rec, err := r.csv.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		return Row{}, fmt.Errorf("csv inventory row %d: %w", r.rowNum+1, err)
	}
	r.rowNum++
	get := func(f csvField) string {
		if i := r.index[f]; i >= 0 {
			return rec[i]
		}
		return ""
	}
	key, err := unescapeKey(get(fKey))
	if err != nil {
		return Row{}, fmt.Errorf("csv inventory row %d: key %q is not URL-encoded: %w", r.rowNum, get(fKey), err)
	}
	row := Row{
		Bucket: get(fBucket), Key: key, VersionID: get(fVersionID),
		IsLatest: isTrue(get(fIsLatest)), IsDeleteMarker: isTrue(get(fIsDeleteMarker)),
		EncryptionStatus: get(fEncryption), BucketKeyStatus: get(fBucketKey),
		LockMode: get(fLockMode), LegalHold: get(fLegalHold), StorageClass: get(fStorageClass), ETag: get(fETag),
	}
	if s := get(fLastModified); s != "" {
		if row.LastModified, err = parseISOTime(s); err != nil {
			return Row{}, fmt.Errorf("csv inventory row %d: last modified date %q: %w", r.rowNum, s, err)
		}
	}
	if s := get(fSize); s != "" {
		if row.Size, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Row{}, fmt.Errorf("csv inventory row %d: size %q: %w", r.rowNum, s, err)
		}
	}
	if s := get(fRetainUntil); s != "" {
		if row.RetainUntil, err = parseDate(s); err != nil {
			return Row{}, fmt.Errorf("csv inventory row %d: retain-until date %q: %w", r.rowNum, s, err)
		}
	}
	if row.Bucket == "" || row.Key == "" {
		return Row{}, fmt.Errorf("csv inventory row %d: bucket or key is empty", r.rowNum)
	}
	return withFlags(row, r.flags), nil
}

// unescapeKey form-decodes a key, without work for the common key that
// holds nothing to decode.
func unescapeKey(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// parseISOTime reads S3 Inventory's 2006-01-02T15:04:05.000Z quickly, and
// any other RFC 3339 time the slow way.
func parseISOTime(s string) (time.Time, error) {
	if len(s) == 24 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == '.' && s[23] == 'Z' {
		n := func(i, j int) (int, bool) {
			v := 0
			for _, c := range s[i:j] {
				if c < '0' || c > '9' {
					return 0, false
				}
				v = v*10 + int(c-'0')
			}
			return v, true
		}
		y, ok1 := n(0, 4)
		mo, ok2 := n(5, 7)
		d, ok3 := n(8, 10)
		h, ok4 := n(11, 13)
		mi, ok5 := n(14, 16)
		sec, ok6 := n(17, 19)
		ms, ok7 := n(20, 23)
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && mo >= 1 && mo <= 12 && h < 24 && mi < 60 && sec < 60 {
			t := time.Date(y, time.Month(mo), d, h, mi, sec, ms*1e6, time.UTC)
			if t.Day() == d { // time.Date rolls an impossible day over; such a date is refused below
				return t, nil
			}
		}
	}
	return time.Parse(time.RFC3339, s)
}

func (r *csvReader) Skip(n int64) error { return skipByReading(r, n) }
func (r *csvReader) Close() error       { return r.gz.Close() }

// parquetRow is S3 Inventory's Parquet schema (the fields s3rekey reads).
// Optional fields are plain values: a null reads as the zero value, which
// s3rekey treats as absent, and saves an allocation per field per row.
type parquetRow struct {
	Bucket           string `parquet:"bucket"`
	Key              string `parquet:"key"`
	VersionID        string `parquet:"version_id,optional"`
	IsLatest         bool   `parquet:"is_latest,optional"`
	IsDeleteMarker   bool   `parquet:"is_delete_marker,optional"`
	Size             int64  `parquet:"size,optional"`
	LastModified     int64  `parquet:"last_modified_date,optional,timestamp(millisecond)"`
	ETag             string `parquet:"e_tag,optional"`
	StorageClass     string `parquet:"storage_class,optional"`
	EncryptionStatus string `parquet:"encryption_status,optional"`
	RetainUntil      int64  `parquet:"object_lock_retain_until_date,optional,timestamp(millisecond)"`
	LockMode         string `parquet:"object_lock_mode,optional"`
	LegalHold        string `parquet:"object_lock_legal_hold_status,optional"`
	BucketKeyStatus  string `parquet:"bucket_key_status,optional"`
}

type parquetReader struct {
	r     *parquet.GenericReader[parquetRow]
	buf   []parquetRow
	pos   int
	flags Row
	done  bool
}

func newParquetReader(ra io.ReaderAt, size int64, flags Row) (pr *parquetReader, err error) {
	file, err := parquet.OpenFile(ra, size)
	if err != nil {
		return nil, fmt.Errorf("parquet inventory: %w", err)
	}
	// The library panics on files whose schema it cannot convert; an
	// inventory file is outside input, so that is an error here.
	defer func() {
		if p := recover(); p != nil {
			pr, err = nil, fmt.Errorf("parquet inventory: unreadable schema: %v", p)
		}
	}()
	return &parquetReader{r: parquet.NewGenericReader[parquetRow](file), flags: flags}, nil
}

func (r *parquetReader) Next() (row Row, err error) {
	if r.pos == len(r.buf) {
		if r.done {
			return Row{}, io.EOF
		}
		if r.buf == nil {
			r.buf = make([]parquetRow, 1024)
		}
		n, readErr := r.readBatch()
		r.buf, r.pos = r.buf[:n], 0
		if readErr != nil {
			if !errors.Is(readErr, io.EOF) {
				return Row{}, fmt.Errorf("parquet inventory: %w", readErr)
			}
			r.done = true
		}
		if n == 0 {
			return Row{}, io.EOF
		}
	}
	p := &r.buf[r.pos]
	r.pos++
	row = Row{Bucket: p.Bucket, Key: p.Key, VersionID: p.VersionID, IsLatest: p.IsLatest, IsDeleteMarker: p.IsDeleteMarker,
		Size: p.Size, EncryptionStatus: p.EncryptionStatus, BucketKeyStatus: p.BucketKeyStatus, LockMode: p.LockMode,
		LegalHold: p.LegalHold, StorageClass: p.StorageClass, ETag: p.ETag}
	if p.LastModified != 0 {
		row.LastModified = time.UnixMilli(p.LastModified).UTC()
	}
	if p.RetainUntil != 0 {
		row.RetainUntil = time.UnixMilli(p.RetainUntil).UTC()
	}
	if row.Bucket == "" || row.Key == "" {
		return Row{}, errors.New("parquet inventory: a row has no bucket or key")
	}
	return withFlags(row, r.flags), nil
}

// readBatch refills the buffer, turning a library panic on corrupt pages
// into an error.
func (r *parquetReader) readBatch() (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("corrupt data: %v", p)
		}
	}()
	return r.r.Read(r.buf[:cap(r.buf)])
}

func (r *parquetReader) Skip(n int64) error {
	if err := r.r.SeekToRow(n); err != nil {
		return fmt.Errorf("parquet inventory: seek to row %d: %w", n, err)
	}
	r.buf, r.pos = r.buf[:0], 0
	return nil
}

func (r *parquetReader) Close() error { return r.r.Close() }

// orcFields are the ORC columns s3rekey reads, in the order of the cursor.
var orcFields = []string{"bucket", "key", "version_id", "is_latest", "is_delete_marker", "size", "last_modified_date", "e_tag", "storage_class",
	"encryption_status", "object_lock_retain_until_date", "object_lock_mode", "object_lock_legal_hold_status", "bucket_key_status"}

type orcReader struct {
	r      *orc.Reader
	c      *orc.Cursor
	fields []string
	inRows bool
	flags  Row
}

func newORCReader(ra io.ReaderAt, size int64, flags Row) (or *orcReader, err error) {
	defer func() {
		if p := recover(); p != nil {
			or, err = nil, fmt.Errorf("orc inventory: corrupt file: %v", p)
		}
	}()
	r, err := orc.NewReader(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return nil, fmt.Errorf("orc inventory: %w", err)
	}
	have := map[string]bool{}
	for _, name := range r.Schema().Columns() {
		have[name] = true
	}
	if !have["bucket"] || !have["key"] {
		return nil, errors.New("orc inventory: the schema has no bucket and key columns")
	}
	var fields []string
	for _, f := range orcFields {
		if have[f] {
			fields = append(fields, f)
		}
	}
	return &orcReader{r: r, c: r.Select(fields...), fields: fields, flags: flags}, nil
}

func (r *orcReader) Next() (row Row, err error) {
	defer func() {
		if p := recover(); p != nil {
			row, err = Row{}, fmt.Errorf("orc inventory: corrupt data: %v", p)
		}
	}()
	for !r.inRows || !r.c.Next() {
		if err := r.c.Err(); err != nil {
			return Row{}, fmt.Errorf("orc inventory: %w", err)
		}
		if !r.c.Stripes() {
			if err := r.c.Err(); err != nil && !errors.Is(err, io.EOF) {
				return Row{}, fmt.Errorf("orc inventory: %w", err)
			}
			return Row{}, io.EOF
		}
		r.inRows = true
	}
	for i, v := range r.c.Row() {
		switch r.fields[i] {
		case "bucket":
			row.Bucket, _ = v.(string)
		case "key":
			row.Key, _ = v.(string)
		case "version_id":
			row.VersionID, _ = v.(string)
		case "is_latest":
			row.IsLatest, _ = v.(bool)
		case "is_delete_marker":
			row.IsDeleteMarker, _ = v.(bool)
		case "size":
			row.Size, _ = v.(int64)
		case "last_modified_date":
			if t, ok := v.(time.Time); ok {
				row.LastModified = t.UTC()
			}
		case "e_tag":
			row.ETag, _ = v.(string)
		case "storage_class":
			row.StorageClass, _ = v.(string)
		case "encryption_status":
			row.EncryptionStatus, _ = v.(string)
		case "object_lock_retain_until_date":
			// The manifest's example schema says timestamp; the Athena
			// table S3 documents for the same files says bigint (epoch
			// milliseconds). Read either.
			switch t := v.(type) {
			case time.Time:
				row.RetainUntil = t.UTC()
			case int64:
				row.RetainUntil = time.UnixMilli(t).UTC()
			}
		case "object_lock_mode":
			row.LockMode, _ = v.(string)
		case "object_lock_legal_hold_status":
			row.LegalHold, _ = v.(string)
		case "bucket_key_status":
			row.BucketKeyStatus, _ = v.(string)
		}
	}
	if row.Bucket == "" || row.Key == "" {
		return Row{}, errors.New("orc inventory: a row has no bucket or key")
	}
	return withFlags(row, r.flags), nil
}

func (r *orcReader) Skip(n int64) error { return skipByReading(r, n) }
func (r *orcReader) Close() error       { return r.r.Close() }
