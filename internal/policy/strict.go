package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// encoding/json matches field names case-insensitively, so that "dryrun"
// or "KMSKEYARN" would silently set dryRun or kmsKeyArn, and
// DisallowUnknownFields does not catch them. checkKeys walks the document
// against the Go types instead and accepts only exact JSON names: the Go
// structs are the field table, and a field added to one is accepted (and
// checked) everywhere it appears, with no list to keep in step.

// checkKeys reports the first object key in data that is not a JSON field
// name of t, naming where it is.
func checkKeys(data []byte, t reflect.Type, where string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return fmt.Errorf("%s%w", at(where), typeError(err))
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("%sunknown field %q%s", at(where), k, suggestion(k, fields))
			}
			if err := checkKeys(obj[k], ft, join(where, k)); err != nil {
				return err
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return fmt.Errorf("%s%w", at(where), typeError(err))
		}
		for _, k := range sortedKeys(obj) {
			if err := checkKeys(obj[k], t.Elem(), join(where, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return fmt.Errorf("%s%w", at(where), typeError(err))
		}
		for i, el := range arr {
			if err := checkKeys(el, t.Elem(), fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// at prefixes a message with where it is ("" is the document itself).
func at(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

func join(where, k string) string {
	if where == "" {
		return k
	}
	return where + "." + k
}

// typeError words a JSON shape mismatch for a person.
func typeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("a JSON %s where %s is expected", te.Value, te.Type)
	}
	return err
}

// jsonFields maps a struct's exact JSON names to their types (fields
// tagged "-" and unexported fields are not part of the document).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// suggestion names the field a case variant or near miss was meant as.
func suggestion(k string, fields map[string]reflect.Type) string {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", name)
		}
	}
	return fmt.Sprintf(" (known fields: %s)", strings.Join(sortedKeys(fields), ", "))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
