package inventory

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// File formats of an inventory.
const (
	FormatCSV     = "CSV"
	FormatParquet = "Parquet"
	FormatORC     = "ORC"
)

// Manifest is an inventory's manifest.json.
type Manifest struct {
	SourceBucket      string         `json:"sourceBucket"`
	DestinationBucket string         `json:"destinationBucket"`
	Version           string         `json:"version"`
	CreationTimestamp string         `json:"creationTimestamp"`
	FileFormat        string         `json:"fileFormat"`
	FileSchema        string         `json:"fileSchema"`
	Files             []ManifestFile `json:"files"`
}

// ManifestFile is one data file of an inventory.
type ManifestFile struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	MD5Checksum string `json:"MD5checksum"`
}

// ErrChecksum marks a manifest or data file whose MD5 does not match.
var ErrChecksum = errors.New("checksum mismatch")

// ParseManifest verifies manifest.json against the content of
// manifest.checksum (its MD5 in hex) and decodes it.
func ParseManifest(manifestJSON, checksum []byte) (*Manifest, error) {
	sum := md5.Sum(manifestJSON)
	want := strings.ToLower(strings.TrimSpace(string(checksum)))
	if hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("manifest.json: %w: MD5 is %x, manifest.checksum says %q", ErrChecksum, sum, want)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifestJSON))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	switch {
	case m.SourceBucket == "":
		return errors.New("sourceBucket is empty")
	case m.FileFormat != FormatCSV && m.FileFormat != FormatParquet && m.FileFormat != FormatORC:
		return fmt.Errorf("fileFormat %q is not CSV, Parquet or ORC", m.FileFormat)
	}
	for i, f := range m.Files {
		if f.Key == "" || len(f.MD5Checksum) != 32 {
			return fmt.Errorf("files[%d]: key and a 32-digit MD5checksum are required", i)
		}
	}
	cols, err := m.Columns()
	if err != nil {
		return err
	}
	if len(cols) < 2 || cols[0] != "Bucket" || cols[1] != "Key" {
		return fmt.Errorf("fileSchema must start with Bucket, Key; it is %q", m.FileSchema)
	}
	return nil
}

var (
	parquetField = regexp.MustCompile(`(?:required|optional)\s+\w+\s+(\w+)`)
	orcField     = regexp.MustCompile(`(\w+):`)
)

// Columns are the inventory's fields in file order, in the CSV spelling
// (Bucket, Key, VersionId, …) whatever the format.
func (m *Manifest) Columns() ([]string, error) {
	var names []string
	switch m.FileFormat {
	case FormatCSV:
		for f := range strings.SplitSeq(m.FileSchema, ",") {
			names = append(names, strings.TrimSpace(f))
		}
	case FormatParquet:
		for _, match := range parquetField.FindAllStringSubmatch(m.FileSchema, -1) {
			names = append(names, csvName(match[1]))
		}
	case FormatORC:
		inner := strings.TrimSuffix(strings.TrimPrefix(m.FileSchema, "struct<"), ">")
		for _, match := range orcField.FindAllStringSubmatch(inner, -1) {
			names = append(names, csvName(match[1]))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("fileSchema %q lists no fields", m.FileSchema)
	}
	return names, nil
}

// csvName turns a snake_case Parquet/ORC field name into its CSV spelling.
func csvName(snake string) string {
	if n, ok := snakeToCSV[snake]; ok {
		return n
	}
	var b strings.Builder
	for part := range strings.SplitSeq(snake, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

var snakeToCSV = map[string]string{"version_id": "VersionId", "e_tag": "ETag"}

// DestinationBucketName is the bucket name of the manifest's
// destinationBucket ARN.
func (m *Manifest) DestinationBucketName() string {
	return strings.TrimPrefix(m.DestinationBucket, "arn:aws:s3:::")
}
