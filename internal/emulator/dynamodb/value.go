package dynamodb

import (
	"bytes"
	"math/big"
	"net/http"
	"slices"
	"strings"

	"github.com/s3rekey/s3rekey/internal/emulator/core"
)

// Value is one attribute value in DynamoDB's JSON wire form: exactly one
// field is set.
type Value struct {
	S    *string           `json:"S,omitempty"`
	N    *string           `json:"N,omitempty"`
	B    []byte            `json:"B,omitempty"`
	BOOL *bool             `json:"BOOL,omitempty"`
	NULL *bool             `json:"NULL,omitempty"`
	M    map[string]*Value `json:"M,omitempty"`
	L    []*Value          `json:"L,omitempty"`
	SS   []string          `json:"SS,omitempty"`
	NS   []string          `json:"NS,omitempty"`
	BS   [][]byte          `json:"BS,omitempty"`
}

// Item is one item: attribute name to value.
type Item map[string]*Value

// types counts the types set on v and names the first.
func (v *Value) types() (n int, first string) {
	if v == nil {
		return 0, ""
	}
	for _, t := range [...]struct {
		name string
		set  bool
	}{{"S", v.S != nil}, {"N", v.N != nil}, {"B", v.B != nil}, {"BOOL", v.BOOL != nil}, {"NULL", v.NULL != nil},
		{"M", v.M != nil}, {"L", v.L != nil}, {"SS", v.SS != nil}, {"NS", v.NS != nil}, {"BS", v.BS != nil}} {
		if t.set {
			if n == 0 {
				first = t.name
			}
			n++
		}
	}
	return n, first
}

// kind is the value's type ("" for none).
func (v *Value) kind() string {
	_, k := v.types()
	return k
}

func validation(msg string) *core.Error {
	return core.Errorf(http.StatusBadRequest, "ValidationException", msg)
}

// check validates a value as DynamoDB does on input: one type, numbers
// that are numbers, no empty or duplicate set members.
func (v *Value) check() *core.Error {
	n, _ := v.types()
	if n == 0 {
		return validation("Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
	}
	if n != 1 {
		return validation("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
	}
	switch {
	case v.N != nil:
		if err := checkNumber(*v.N); err != nil {
			return err
		}
	case v.NS != nil:
		for _, s := range v.NS {
			if err := checkNumber(s); err != nil {
				return err
			}
		}
	case v.M != nil:
		for _, e := range v.M {
			if err := e.check(); err != nil {
				return err
			}
		}
	case v.L != nil:
		for _, e := range v.L {
			if err := e.check(); err != nil {
				return err
			}
		}
	}
	if (v.SS != nil && len(v.SS) == 0) || (v.NS != nil && len(v.NS) == 0) || (v.BS != nil && len(v.BS) == 0) {
		return validation("One or more parameter values were invalid: An string set  may not be empty")
	}
	return nil
}

// parseNumber reads a DynamoDB number: up to 38 digits of precision.
func parseNumber(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

func formatNumber(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	// Enough digits for any number DynamoDB stores (38 significant).
	return strings.TrimRight(strings.TrimRight(r.FloatString(38), "0"), ".")
}

func numberValue(r *big.Rat) *Value { s := formatNumber(r); return &Value{N: &s} }

// equal is DynamoDB's = : same type and value (numbers by value, sets as
// sets).
func equal(a, b *Value) bool {
	if a == nil || b == nil || a.kind() != b.kind() {
		return false
	}
	switch a.kind() {
	case "S":
		return *a.S == *b.S
	case "N":
		x, _ := parseNumber(*a.N)
		y, _ := parseNumber(*b.N)
		return x.Cmp(y) == 0
	case "B":
		return bytes.Equal(a.B, b.B)
	case "BOOL":
		return *a.BOOL == *b.BOOL
	case "NULL":
		return true
	case "M":
		if len(a.M) != len(b.M) {
			return false
		}
		for k, v := range a.M {
			if !equal(v, b.M[k]) {
				return false
			}
		}
		return true
	case "L":
		return slices.EqualFunc(a.L, b.L, equal)
	case "SS":
		return sameSet(a.SS, b.SS)
	case "NS":
		return len(a.NS) == len(b.NS) && slices.IndexFunc(a.NS, func(x string) bool { return !containsNumber(b.NS, x) }) < 0
	case "BS":
		return len(a.BS) == len(b.BS) && slices.IndexFunc(a.BS, func(x []byte) bool {
			return !slices.ContainsFunc(b.BS, func(y []byte) bool { return bytes.Equal(x, y) })
		}) < 0
	}
	return false
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && slices.IndexFunc(a, func(x string) bool { return !slices.Contains(b, x) }) < 0
}

func containsNumber(set []string, n string) bool {
	x, _ := parseNumber(n)
	return slices.ContainsFunc(set, func(s string) bool { y, _ := parseNumber(s); return x.Cmp(y) == 0 })
}

// compare orders two scalars of one type (S, N or B); ok is false for any
// other pair, where <, <=, > and >= are false.
func compare(a, b *Value) (int, bool) {
	if a == nil || b == nil || a.kind() != b.kind() {
		return 0, false
	}
	switch a.kind() {
	case "S":
		return strings.Compare(*a.S, *b.S), true
	case "N":
		x, _ := parseNumber(*a.N)
		y, _ := parseNumber(*b.N)
		return x.Cmp(y), true
	case "B":
		return bytes.Compare(a.B, b.B), true
	}
	return 0, false
}

// size is an attribute value's size as DynamoDB bills it: strings and
// binaries by length, numbers by about one byte per two significant
// digits plus one, containers with 3 bytes of their own and 1 per element.
func (v *Value) size() int {
	switch v.kind() {
	case "S":
		return len(*v.S)
	case "N":
		return numberSize(*v.N)
	case "B":
		return len(v.B)
	case "BOOL", "NULL":
		return 1
	case "M":
		n := 3
		for k, e := range v.M {
			n += len(k) + e.size() + 1
		}
		return n
	case "L":
		n := 3
		for _, e := range v.L {
			n += e.size() + 1
		}
		return n
	case "SS":
		n := 0
		for _, s := range v.SS {
			n += len(s)
		}
		return n
	case "NS":
		n := 0
		for _, s := range v.NS {
			n += numberSize(s)
		}
		return n
	case "BS":
		n := 0
		for _, b := range v.BS {
			n += len(b)
		}
		return n
	}
	return 0
}

func numberSize(s string) int {
	digits := strings.TrimLeft(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s), "0")
	return (len(strings.TrimRight(digits, "0"))+1)/2 + 1
}

// itemSize is the sum of attribute name lengths and value sizes.
func (it Item) size() int {
	n := 0
	for k, v := range it {
		n += len(k) + v.size()
	}
	return n
}

func (v *Value) clone() *Value {
	if v == nil {
		return nil
	}
	c := *v
	if v.M != nil {
		c.M = make(map[string]*Value, len(v.M))
		for k, e := range v.M {
			c.M[k] = e.clone()
		}
	}
	if v.L != nil {
		c.L = make([]*Value, len(v.L))
		for i, e := range v.L {
			c.L[i] = e.clone()
		}
	}
	c.SS, c.NS, c.BS = slices.Clone(v.SS), slices.Clone(v.NS), slices.Clone(v.BS)
	c.B = slices.Clone(v.B)
	return &c
}

func (it Item) clone() Item {
	if it == nil {
		return nil
	}
	c := make(Item, len(it))
	for k, v := range it {
		c[k] = v.clone()
	}
	return c
}
