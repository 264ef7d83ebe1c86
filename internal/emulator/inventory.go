package emulator

import (
	"fmt"
	"net/http"
	"time"

	"github.com/s3rekey/s3rekey/internal/inventory"
)

// InventoryOptions describes one S3 Inventory report to publish.
type InventoryOptions struct {
	SourceBucket      string
	DestinationBucket string
	Prefix            string // destination prefix
	ConfigID          string // default "s3rekey"
	Format            string // CSV, Parquet or ORC
	CurrentOnly       bool   // "Current version only" instead of "Include all versions"
	RowsPerFile       int
}

// PublishInventory does what S3 Inventory does on its schedule: it lists
// the source bucket's versions with their encryption, bucket-key and lock
// state, writes the data files into the destination bucket, then
// manifest.json, then manifest.checksum — each an ordinary upload that
// fires the destination bucket's events. It returns the manifest's key.
func (e *Emulator) PublishInventory(opts InventoryOptions) (string, error) {
	if opts.ConfigID == "" {
		opts.ConfigID = "s3rekey"
	}
	rows, err := e.s3.inventoryRows(opts.SourceBucket, opts.CurrentOnly)
	if err != nil {
		return "", err
	}
	rep, err := inventory.ReportWriter{Format: opts.Format, SourceBucket: opts.SourceBucket, DestinationBucket: opts.DestinationBucket,
		Prefix: opts.Prefix, ConfigID: opts.ConfigID, RowsPerFile: opts.RowsPerFile, Created: time.Now().UTC()}.Write(rows)
	if err != nil {
		return "", err
	}
	for _, key := range rep.FileKeysUsed {
		if err := e.s3.putBytes(opts.DestinationBucket, key, rep.DataFiles[key]); err != nil {
			return "", err
		}
	}
	if err := e.s3.putBytes(opts.DestinationBucket, rep.ManifestKey, rep.Manifest); err != nil {
		return "", err
	}
	if err := e.s3.putBytes(opts.DestinationBucket, rep.ChecksumKey, rep.Checksum); err != nil {
		return "", err
	}
	return rep.ManifestKey, nil
}

// inventoryRows lists a bucket as an inventory row per version.
func (s *s3Service) inventoryRows(bucketName string, currentOnly bool) ([]inventory.Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		return nil, fmt.Errorf("inventory of %s: %w", bucketName, apiErr)
	}
	var rows []inventory.Row
	for _, key := range b.keys() {
		vs := b.objects[key]
		for i := len(vs) - 1; i >= 0; i-- {
			v := vs[i]
			latest := i == len(vs)-1
			if currentOnly && (!latest || v.deleteMarker) {
				continue
			}
			r := inventory.Row{Bucket: bucketName, Key: key, VersionID: v.versionID, IsLatest: latest, IsDeleteMarker: v.deleteMarker,
				LastModified: v.lastModified}
			if b.versioning == "" {
				r.VersionID = ""
			}
			if !v.deleteMarker {
				r.Size, r.ETag, r.StorageClass = v.size, v.etag[1:len(v.etag)-1], v.storageClass
				r.EncryptionStatus, r.BucketKeyStatus = string(v.env.kind), "DISABLED"
				if v.env.bucketKey {
					r.BucketKeyStatus = "ENABLED"
				}
				r.LockMode, r.RetainUntil = v.lockMode, v.retainUntil
				if b.objectLock {
					r.LegalHold = map[bool]string{true: "ON", false: "OFF"}[v.legalHold]
				}
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// putBytes stores an object as an upload without SSE headers would, and
// fires its events; S3 itself writes inventory reports this way.
func (s *s3Service) putBytes(bucketName, key string, body []byte) error {
	req, err := http.NewRequest(http.MethodPut, "/", nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	b, apiErr := s.bucketLocked(bucketName)
	if apiErr != nil {
		s.mu.Unlock()
		return fmt.Errorf("inventory destination %s: %w", bucketName, apiErr)
	}
	v, _, apiErr := s.newVersion(b, key, req, body)
	if apiErr != nil {
		s.mu.Unlock()
		return fmt.Errorf("write s3://%s/%s: %w", bucketName, key, apiErr)
	}
	b.addVersion(v)
	ev := b.newEvent("ObjectCreated:Put", "PutObject", v)
	s.mu.Unlock()
	s.emit(ev)
	return nil
}
