package metatable

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/golang/snappy"
)

// Avro object container files (Avro specification 1.11, "Object Container
// Files" and "Binary Encoding"), as Iceberg writes its manifest lists and
// manifests. The reader decodes every Avro type by the writer's schema
// into Go values: records become map[string]any, arrays []any, maps
// map[string]any, unions the value of their branch, enums their symbol.
// Codecs: null, deflate and snappy (Iceberg's defaults are among them);
// others are refused with an error naming them.

// avroSchema is a parsed schema node.
type avroSchema struct {
	typ     string        // null, boolean, int, long, float, double, bytes, string, record, enum, array, map, union, fixed
	fields  []avroField   // record
	items   *avroSchema   // array, map values
	branch  []*avroSchema // union
	symbols []string      // enum
	size    int           // fixed
}

type avroField struct {
	name   string
	schema *avroSchema
}

// maxAvroDepth bounds schema nesting, so that a hostile schema cannot
// recurse without end.
const maxAvroDepth = 32

func parseAvroSchema(doc []byte) (*avroSchema, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	return schemaOf(v, map[string]*avroSchema{}, 0)
}

func schemaOf(v any, named map[string]*avroSchema, depth int) (*avroSchema, error) {
	if depth > maxAvroDepth {
		return nil, errors.New("avro schema: nested too deeply")
	}
	switch t := v.(type) {
	case string:
		switch t {
		case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
			return &avroSchema{typ: t}, nil
		}
		if s, ok := named[t]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("avro schema: unknown type %q", t)
	case []any:
		u := &avroSchema{typ: "union"}
		for _, b := range t {
			s, err := schemaOf(b, named, depth+1)
			if err != nil {
				return nil, err
			}
			u.branch = append(u.branch, s)
		}
		return u, nil
	case map[string]any:
		typ, _ := t["type"].(string)
		name, _ := t["name"].(string)
		switch typ {
		case "record", "error":
			s := &avroSchema{typ: "record"}
			if name != "" {
				named[name] = s
			}
			fields, _ := t["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, errors.New("avro schema: a record field is not an object")
				}
				fname, _ := fm["name"].(string)
				fs, err := schemaOf(fm["type"], named, depth+1)
				if err != nil {
					return nil, fmt.Errorf("field %s: %w", fname, err)
				}
				s.fields = append(s.fields, avroField{name: fname, schema: fs})
			}
			return s, nil
		case "enum":
			s := &avroSchema{typ: "enum"}
			syms, _ := t["symbols"].([]any)
			for _, x := range syms {
				str, _ := x.(string)
				s.symbols = append(s.symbols, str)
			}
			if name != "" {
				named[name] = s
			}
			return s, nil
		case "array", "map":
			key := "items"
			if typ == "map" {
				key = "values"
			}
			items, err := schemaOf(t[key], named, depth+1)
			if err != nil {
				return nil, err
			}
			return &avroSchema{typ: typ, items: items}, nil
		case "fixed":
			size, _ := t["size"].(float64)
			if size < 0 || size > 1<<20 {
				return nil, errors.New("avro schema: fixed size out of range")
			}
			s := &avroSchema{typ: "fixed", size: int(size)}
			if name != "" {
				named[name] = s
			}
			return s, nil
		default:
			// A primitive with attributes ({"type":"long","logicalType":…}).
			return schemaOf(t["type"], named, depth+1)
		}
	}
	return nil, fmt.Errorf("avro schema: unreadable node %T", v)
}

// avroDecoder reads binary-encoded values.
type avroDecoder struct {
	r   *bytes.Reader
	err error
}

// maxAvroItems bounds one string, bytes or block length, so that a
// corrupt length cannot ask for gigabytes.
const maxAvroItems = 64 << 20

func (d *avroDecoder) long() int64 {
	u, err := binary.ReadUvarint(d.r)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("avro: read varint: %w", err)
	}
	return int64(u>>1) ^ -int64(u&1)
}

func (d *avroDecoder) length() int {
	n := d.long()
	if n < 0 || n > maxAvroItems || n > int64(d.r.Len()) {
		if d.err == nil {
			d.err = fmt.Errorf("avro: length %d out of range", n)
		}
		return 0
	}
	return int(n)
}

func (d *avroDecoder) bytes(n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil && d.err == nil {
		d.err = fmt.Errorf("avro: read %d bytes: %w", n, err)
	}
	return b
}

func (d *avroDecoder) value(s *avroSchema) any {
	if d.err != nil {
		return nil
	}
	switch s.typ {
	case "null":
		return nil
	case "boolean":
		b, err := d.r.ReadByte()
		if err != nil {
			d.err = err
		}
		return b == 1
	case "int", "long":
		return d.long()
	case "float":
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(d.bytes(4))))
	case "double":
		return math.Float64frombits(binary.LittleEndian.Uint64(d.bytes(8)))
	case "bytes":
		return d.bytes(d.length())
	case "string":
		return string(d.bytes(d.length()))
	case "fixed":
		return d.bytes(s.size)
	case "enum":
		i := d.long()
		if i < 0 || int(i) >= len(s.symbols) {
			d.err = fmt.Errorf("avro: enum index %d out of range", i)
			return nil
		}
		return s.symbols[i]
	case "union":
		i := d.long()
		if i < 0 || int(i) >= len(s.branch) {
			d.err = fmt.Errorf("avro: union branch %d out of range", i)
			return nil
		}
		return d.value(s.branch[i])
	case "record":
		m := make(map[string]any, len(s.fields))
		for _, f := range s.fields {
			m[f.name] = d.value(f.schema)
		}
		return m
	case "array", "map":
		var arr []any
		m := map[string]any{}
		for d.err == nil {
			n := d.long()
			if n == 0 {
				break
			}
			if n < 0 { // a block with its byte size
				n = -n
				d.long()
			}
			if n > maxAvroItems || n > int64(d.r.Len())+1 {
				d.err = fmt.Errorf("avro: block of %d items out of range", n)
				break
			}
			for ; n > 0 && d.err == nil; n-- {
				if s.typ == "map" {
					k := string(d.bytes(d.length()))
					m[k] = d.value(s.items)
				} else {
					arr = append(arr, d.value(s.items))
				}
			}
		}
		if s.typ == "map" {
			return m
		}
		return arr
	}
	d.err = fmt.Errorf("avro: cannot decode type %s", s.typ)
	return nil
}

var avroMagic = []byte("Obj\x01")

// readAvroFile decodes every record of an object container file.
func readAvroFile(data []byte) (records []map[string]any, meta map[string]string, err error) {
	if !bytes.HasPrefix(data, avroMagic) {
		return nil, nil, errors.New("avro: not an object container file")
	}
	d := &avroDecoder{r: bytes.NewReader(data[len(avroMagic):])}
	header, _ := d.value(&avroSchema{typ: "map", items: &avroSchema{typ: "bytes"}}).(map[string]any)
	if d.err != nil {
		return nil, nil, d.err
	}
	meta = map[string]string{}
	for k, v := range header {
		b, _ := v.([]byte)
		meta[k] = string(b)
	}
	sync := d.bytes(16)
	schema, err := parseAvroSchema([]byte(meta["avro.schema"]))
	if err != nil {
		return nil, nil, err
	}
	codec := meta["avro.codec"]
	for d.err == nil && d.r.Len() > 0 {
		count := d.long()
		size := d.length()
		block := d.bytes(size)
		if marker := d.bytes(16); d.err == nil && !bytes.Equal(marker, sync) {
			return nil, nil, errors.New("avro: block does not end with the file's sync marker")
		}
		if d.err != nil {
			break
		}
		plain, err := decompress(codec, block)
		if err != nil {
			return nil, nil, err
		}
		bd := &avroDecoder{r: bytes.NewReader(plain)}
		if count < 0 || count > int64(len(plain))+1 {
			return nil, nil, fmt.Errorf("avro: block of %d records out of range", count)
		}
		for ; count > 0; count-- {
			rec, ok := bd.value(schema).(map[string]any)
			if bd.err != nil {
				return nil, nil, bd.err
			}
			if !ok {
				return nil, nil, errors.New("avro: the file's records are not records")
			}
			records = append(records, rec)
		}
	}
	return records, meta, d.err
}

func decompress(codec string, block []byte) ([]byte, error) {
	switch codec {
	case "", "null":
		return block, nil
	case "deflate":
		out, err := io.ReadAll(io.LimitReader(flate.NewReader(bufio.NewReader(bytes.NewReader(block))), maxAvroItems))
		if err != nil {
			return nil, fmt.Errorf("avro: inflate a block: %w", err)
		}
		return out, nil
	case "snappy":
		// The block's last four bytes are the CRC-32 of the uncompressed data.
		if len(block) < 4 {
			return nil, errors.New("avro: snappy block too short")
		}
		if n, err := snappy.DecodedLen(block[:len(block)-4]); err != nil || n > maxAvroItems {
			return nil, errors.New("avro: snappy block unreadable or too large")
		}
		out, err := snappy.Decode(nil, block[:len(block)-4])
		if err != nil {
			return nil, fmt.Errorf("avro: snappy block: %w", err)
		}
		if crc32.ChecksumIEEE(out) != binary.BigEndian.Uint32(block[len(block)-4:]) {
			return nil, errors.New("avro: snappy block fails its CRC")
		}
		return out, nil
	}
	return nil, fmt.Errorf("avro: codec %q is not supported (null, deflate and snappy are)", codec)
}
