package metatable

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/golang/snappy"
)

// avroFile builds a container file of one block, with a codec.
func avroFile(t testing.TB, schema, codec string, count int, records []byte) []byte {
	var e bytes.Buffer
	long := func(v int64) {
		u := uint64(v<<1) ^ uint64(v>>63)
		for u >= 0x80 {
			e.WriteByte(byte(u) | 0x80)
			u >>= 7
		}
		e.WriteByte(byte(u))
	}
	str := func(s string) { long(int64(len(s))); e.WriteString(s) }
	e.WriteString("Obj\x01")
	long(2)
	str("avro.schema")
	str(schema)
	str("avro.codec")
	str(codec)
	long(0)
	sync := bytes.Repeat([]byte{7}, 16)
	e.Write(sync)
	block := records
	if codec == "snappy" {
		block = snappy.Encode(nil, records)
		block = binary.BigEndian.AppendUint32(block, crc32.ChecksumIEEE(records))
	}
	if codec == "deflate" {
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, flate.BestSpeed)
		w.Write(records)
		w.Close()
		block = z.Bytes()
	}
	long(int64(count))
	long(int64(len(block)))
	e.Write(block)
	e.Write(sync)
	return e.Bytes()
}

// Avro binary encoding (Avro specification 1.11): zig-zag longs, strings
// with a length, unions by branch index, arrays in blocks.
func TestAvroDecodesEachTypeAndCodec(t *testing.T) {
	schema := `{"type":"record","name":"r","fields":[{"name":"n","type":"long"},{"name":"s","type":"string"},` +
		`{"name":"u","type":["null","long"]},{"name":"b","type":"boolean"},{"name":"a","type":{"type":"array","items":"int"}}]}`
	// n=-2, s="hi", u=branch 1 value 5, b=true, a=[1,2] in one block.
	rec := []byte{3, 4, 'h', 'i', 2, 10, 1, 4, 2, 4, 0}
	for _, codec := range []string{"null", "deflate", "snappy"} {
		t.Run(codec, func(t *testing.T) {
			recs, _, err := readAvroFile(avroFile(t, schema, codec, 2, append(append([]byte{}, rec...), rec...)))
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 2 {
				t.Fatalf("%d records", len(recs))
			}
			r := recs[1]
			if r["n"] != int64(-2) || r["s"] != "hi" || r["u"] != int64(5) || r["b"] != true || len(r["a"].([]any)) != 2 {
				t.Fatalf("decoded %v", r)
			}
		})
	}
	if _, _, err := readAvroFile(avroFile(t, schema, "zstandard", 1, rec)); err == nil {
		t.Fatal("an unsupported codec was read")
	}
	if _, _, err := readAvroFile(avroFile(t, schema, "null", 3, rec)); err == nil {
		t.Fatal("a block claiming more records than it holds was read")
	}
}

func FuzzReadAvroFile(f *testing.F) {
	schema := `{"type":"record","name":"r","fields":[{"name":"s","type":"string"},{"name":"m","type":{"type":"map","values":"long"}}]}`
	f.Add(avroFile(f, schema, "null", 1, []byte{4, 'h', 'i', 2, 2, 'k', 6, 0}))
	f.Add(avroFile(f, schema, "deflate", 1, []byte{4, 'h', 'i', 0}))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = readAvroFile(data)
	})
}

func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"format-version":2,"current-schema-id":0,"schemas":[{"schema-id":0,"fields":[{"name":"key"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseMetadata(data)
		if err == nil {
			md.Current()
		}
	})
}

func FuzzScanParquet(f *testing.F) {
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = scanParquet(data, func(Row) error { return nil })
	})
}
