package metatable

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

type memFiles map[string][]byte

func (m memFiles) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	data, ok := m[aws.ToString(in.Bucket)+"/"+aws.ToString(in.Key)]
	if !ok {
		return nil, errors.New("no such file")
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(data))}, nil
}

// A snapshot with delete files (Iceberg table spec: manifest content 1 is
// deletes; a data file's content 1 or 2 is position or equality deletes)
// is refused, not read as if its deleted rows were there.
func TestDeleteFilesAreRefused(t *testing.T) {
	listSchema := `{"type":"record","name":"manifest_file","fields":[{"name":"manifest_path","type":"string"},{"name":"content","type":"int"}]}`
	entrySchema := `{"type":"record","name":"manifest_entry","fields":[{"name":"status","type":"int"},` +
		`{"name":"data_file","type":{"type":"record","name":"r2","fields":[{"name":"content","type":"int"},{"name":"file_path","type":"string"},{"name":"file_format","type":"string"}]}}]}`
	str := func(s string) []byte { return append([]byte{byte(len(s) * 2)}, s...) }
	entry := func(status, content int64, format string) []byte {
		b := []byte{byte(status * 2), byte(content * 2)}
		b = append(b, str("s3://w/data.parquet")...)
		return append(b, str(format)...)
	}
	for _, tc := range []struct {
		name            string
		manifestContent int64
		entry           []byte
		want            error
		files           int
	}{
		{"data", 0, entry(1, 0, "PARQUET"), nil, 1},
		{"a deleted entry is left out", 0, entry(2, 0, "PARQUET"), nil, 0},
		{"a delete manifest", 1, entry(1, 0, "PARQUET"), ErrDeleteFiles, 0},
		{"a position delete file", 0, entry(1, 1, "PARQUET"), ErrDeleteFiles, 0},
		{"an equality delete file", 0, entry(1, 2, "PARQUET"), ErrDeleteFiles, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := append(str("s3://w/m.avro"), byte(tc.manifestContent*2))
			files := memFiles{"w/list.avro": avroFile(t, listSchema, "null", 1, list), "w/m.avro": avroFile(t, entrySchema, "null", 1, tc.entry)}
			got, err := (&Reader{Files: files}).DataFiles(context.Background(), Snapshot{ManifestList: "s3://w/list.avro"})
			if !errors.Is(err, tc.want) || len(got) != tc.files {
				t.Fatalf("files %v, err %v; want %d files, err %v", got, err, tc.files, tc.want)
			}
		})
	}
}
