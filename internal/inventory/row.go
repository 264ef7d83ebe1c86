package inventory

import (
	"errors"
	"io"
	"time"
)

// Row is what s3rekey reads of one inventory row. Fields the inventory does
// not carry are left at their zero value, and Has* says which were present.
type Row struct {
	Bucket, Key, VersionID string
	IsLatest               bool
	IsDeleteMarker         bool
	Size                   int64
	EncryptionStatus       string // SSE-S3, SSE-KMS, DSSE-KMS, SSE-C, NOT-SSE
	BucketKeyStatus        string // ENABLED, DISABLED
	LockMode               string // GOVERNANCE, COMPLIANCE
	RetainUntil            time.Time
	LegalHold              string // ON, OFF
	StorageClass           string
	LastModified           time.Time
	ETag                   string

	HasIsLatest, HasEncryption, HasBucketKey, HasLock bool
}

// Reader yields the rows of one data file.
type Reader interface {
	// Next returns the next row, or io.EOF after the last one.
	Next() (Row, error)
	// Skip passes over n rows (for resuming at an offset).
	Skip(n int64) error
	Close() error
}

// skipByReading is Skip for readers that cannot seek.
func skipByReading(r Reader, n int64) error {
	for ; n > 0; n-- {
		if _, err := r.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}
