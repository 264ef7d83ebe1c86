package s3tables

import (
	"bytes"
	"crypto/rand"
)

// Iceberg's manifest list and manifest schemas (Iceberg table spec,
// "Manifest Lists" and "Manifests", format version 2), with the fields an
// unpartitioned table of data files needs. Field ids as the spec gives them.
const (
	manifestListSchema = `{"type":"record","name":"manifest_file","fields":[` +
		`{"name":"manifest_path","type":"string","field-id":500},` +
		`{"name":"manifest_length","type":"long","field-id":501},` +
		`{"name":"partition_spec_id","type":"int","field-id":502},` +
		`{"name":"content","type":"int","field-id":517},` +
		`{"name":"sequence_number","type":"long","field-id":515},` +
		`{"name":"min_sequence_number","type":"long","field-id":516},` +
		`{"name":"added_snapshot_id","type":"long","field-id":503},` +
		`{"name":"added_files_count","type":"int","field-id":504},` +
		`{"name":"existing_files_count","type":"int","field-id":505},` +
		`{"name":"deleted_files_count","type":"int","field-id":506},` +
		`{"name":"added_rows_count","type":"long","field-id":512},` +
		`{"name":"existing_rows_count","type":"long","field-id":513},` +
		`{"name":"deleted_rows_count","type":"long","field-id":514}]}`
	manifestSchema = `{"type":"record","name":"manifest_entry","fields":[` +
		`{"name":"status","type":"int","field-id":0},` +
		`{"name":"snapshot_id","type":["null","long"],"default":null,"field-id":1},` +
		`{"name":"sequence_number","type":["null","long"],"default":null,"field-id":3},` +
		`{"name":"file_sequence_number","type":["null","long"],"default":null,"field-id":4},` +
		`{"name":"data_file","type":{"type":"record","name":"r2","fields":[` +
		`{"name":"content","type":"int","field-id":134},` +
		`{"name":"file_path","type":"string","field-id":100},` +
		`{"name":"file_format","type":"string","field-id":101},` +
		`{"name":"partition","type":{"type":"record","name":"r102","fields":[]},"field-id":102},` +
		`{"name":"record_count","type":"long","field-id":103},` +
		`{"name":"file_size_in_bytes","type":"long","field-id":104}]},"field-id":2}]}`
)

// avroEncoder writes Avro binary encoding (Avro specification 1.11,
// "Binary Encoding"): zig-zag varint longs and ints, length-prefixed
// strings, a union as its branch index then the value.
type avroEncoder struct{ bytes.Buffer }

func (e *avroEncoder) long(v int64) {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		e.WriteByte(byte(u) | 0x80)
		u >>= 7
	}
	e.WriteByte(byte(u))
}

func (e *avroEncoder) str(s string) {
	e.long(int64(len(s)))
	e.WriteString(s)
}

// optionalLong writes a ["null","long"] union holding v.
func (e *avroEncoder) optionalLong(v int64) {
	e.long(1)
	e.long(v)
}

// avroContainer wraps encoded records in an Avro object container file
// (specification, "Object Container Files"): magic, metadata map with the
// schema, a sync marker, one block of records, no compression.
func avroContainer(schema string, meta map[string]string, count int, records []byte) []byte {
	var e avroEncoder
	e.WriteString("Obj\x01")
	e.long(int64(len(meta) + 2))
	e.str("avro.schema")
	e.str(schema)
	e.str("avro.codec")
	e.str("null")
	for k, v := range meta {
		e.str(k)
		e.str(v)
	}
	e.long(0)
	sync := make([]byte, 16)
	_, _ = rand.Read(sync)
	e.Write(sync)
	if count > 0 {
		e.long(int64(count))
		e.long(int64(len(records)))
		e.Write(records)
		e.Write(sync)
	}
	return e.Bytes()
}
