package graft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Kind is the type of a property value.
type Kind uint8

// The property value kinds of the wire format.
const (
	KindString Kind = iota + 1
	KindInt
	KindFloat
	KindBool
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "int64"
	case KindFloat:
		return "float64"
	case KindBool:
		return "bool"
	}
	return "invalid"
}

// Value is a property value: a string, an int64, a float64 or a bool. Integers
// are kept exact; they never pass through float64.
type Value struct {
	kind Kind
	s    string
	n    uint64 // int64 bits, float64 bits, or 0/1 for bool
}

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Int returns an int64 value.
func Int(i int64) Value { return Value{kind: KindInt, n: uint64(i)} }

// Float returns a float64 value.
func Float(f float64) Value { return Value{kind: KindFloat, n: math.Float64bits(f)} }

// Bool returns a bool value.
func Bool(b bool) Value {
	if b {
		return Value{kind: KindBool, n: 1}
	}
	return Value{kind: KindBool}
}

// Kind reports the value's type.
func (v Value) Kind() Kind { return v.kind }

// Str returns the string of a string value.
func (v Value) Str() string { return v.s }

// Int returns the integer of an int64 value.
func (v Value) Int() int64 { return int64(v.n) }

// Float returns the number of a float64 value.
func (v Value) Float() float64 { return math.Float64frombits(v.n) }

// Bool returns the truth of a bool value.
func (v Value) Bool() bool { return v.n == 1 }

// Equal reports whether two values have the same kind and the same value.
// Floats compare by bits, so NaN equals itself and 0.0 differs from -0.0.
func (v Value) Equal(o Value) bool { return v == o }

// Any returns the value as string, int64, float64 or bool.
func (v Value) Any() any {
	switch v.kind {
	case KindString:
		return v.s
	case KindInt:
		return v.Int()
	case KindFloat:
		return v.Float()
	case KindBool:
		return v.Bool()
	}
	return nil
}

func (v Value) GoString() string { return fmt.Sprintf("%s(%s)", v.kind, v.appendJSON(nil)) }

// MarshalJSON writes the value so that decoding it gives the same kind back:
// a float always carries a decimal point or an exponent.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.kind == KindFloat {
		f := v.Float()
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("property value %v is not representable in JSON", f)
		}
	}
	if v.kind == 0 {
		return nil, fmt.Errorf("invalid property value")
	}
	return v.appendJSON(nil), nil
}

// AppendJSON appends the value as JSON to b.
func (v Value) AppendJSON(b []byte) []byte { return v.appendJSON(b) }

func (v Value) appendJSON(b []byte) []byte {
	switch v.kind {
	case KindString:
		return appendJSONString(b, v.s)
	case KindInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case KindFloat:
		start := len(b)
		b = strconv.AppendFloat(b, v.Float(), 'g', -1, 64)
		if !bytes.ContainsAny(b[start:], ".eEIN") {
			b = append(b, ".0"...)
		}
		return b
	case KindBool:
		return strconv.AppendBool(b, v.Bool())
	}
	return append(b, "null"...)
}

// UnmarshalJSON decodes a scalar JSON value; see ParseValue.
func (v *Value) UnmarshalJSON(b []byte) error {
	val, err := ParseValue(b)
	if err != nil {
		return err
	}
	*v = val
	return nil
}

// ParseValue decodes one JSON scalar as a property value. A number without a
// fraction or exponent is an int64 and must fit; any other number is a float64.
// null, objects and arrays are not property values.
func ParseValue(raw []byte) (Value, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Value{}, fmt.Errorf("empty value")
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, fmt.Errorf("invalid string: %v", err)
		}
		return String(s), nil
	case c == 't' || c == 'f':
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return Value{}, fmt.Errorf("invalid value %.20q", raw)
		}
		return Bool(b), nil
	case c == '-' || (c >= '0' && c <= '9'):
		if !json.Valid(raw) {
			return Value{}, fmt.Errorf("invalid number %.40q", raw)
		}
		if bytes.ContainsAny(raw, ".eE") {
			f, err := strconv.ParseFloat(string(raw), 64)
			if err != nil {
				return Value{}, fmt.Errorf("number %.40s is out of float64 range", raw)
			}
			return Float(f), nil
		}
		i, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return Value{}, fmt.Errorf("integer %.40s is out of int64 range (write it as a string or a float)", raw)
		}
		return Int(i), nil
	case c == 'n':
		return Value{}, fmt.Errorf("null is not a property value (use dropProps to remove a property)")
	case c == '{':
		return Value{}, fmt.Errorf("an object is not a property value (only string, number and bool are)")
	case c == '[':
		return Value{}, fmt.Errorf("an array is not a property value (only string, number and bool are)")
	}
	return Value{}, fmt.Errorf("invalid value %.20q", raw)
}

// Props are the properties of an element.
type Props map[string]Value

// Keys returns the property names in sorted order.
func (p Props) Keys() []string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Clone returns a copy of p (nil for an empty p).
func (p Props) Clone() Props {
	if len(p) == 0 {
		return nil
	}
	c := make(Props, len(p))
	for k, v := range p {
		c[k] = v
	}
	return c
}

// Equal reports whether p and o hold the same properties.
func (p Props) Equal(o Props) bool {
	if len(p) != len(o) {
		return false
	}
	for k, v := range p {
		if w, ok := o[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// MarshalJSON writes the properties with sorted keys, so that equal props
// always encode to equal bytes.
func (p Props) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// AppendJSON appends the canonical JSON object of p to b.
func (p Props) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, k := range p.Keys() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = p[k].appendJSON(b)
	}
	return append(b, '}')
}

// UnmarshalJSON decodes an object of scalar values.
func (p *Props) UnmarshalJSON(b []byte) error {
	m, err := parseProps(b, "props")
	if err != nil {
		return err
	}
	*p = m
	return nil
}

func parseProps(b []byte, field string) (Props, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, &FieldError{Field: field, Msg: "must be an object of property values"}
	}
	if len(raw) == 0 {
		return nil, nil
	}
	p := make(Props, len(raw))
	for k, r := range raw {
		v, err := ParseValue(r)
		if err != nil {
			return nil, &FieldError{Field: field + "." + fieldName(k), Msg: err.Error()}
		}
		p[k] = v
	}
	return p, nil
}

// fieldName quotes a property name for an error message when it would be
// ambiguous in a dotted path.
func fieldName(k string) string {
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return strconv.Quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// appendJSONString appends s as a JSON string. Runs of bytes that need no
// escaping are copied at once. Invalid UTF-8 cannot come from decoded input
// (Decode rejects it) but is replaced rather than written out.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default: // invalid UTF-8
			b = append(b, `\ufffd`...)
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
