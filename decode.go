package graft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// Limits bound what one record may hold.
type Limits struct {
	MaxRecordBytes int // bytes of the raw record
	MaxOps         int // ops per write
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxRecordBytes: 1 << 20, MaxOps: 10000}

var parsers fastjson.ParserPool

// Decode parses one record of the wire format (docs/wire-format.md).
// recordKey is the source's key for the record, used when the write
// has no "key". Every error is a *FieldError naming the field at fault.
//
// It parses with fastjson (one pass, no reflection): decoding is on the hot
// path of every source.
func Decode(raw []byte, recordKey string, lim Limits) (*Write, error) {
	if lim.MaxRecordBytes > 0 && len(raw) > lim.MaxRecordBytes {
		return nil, &FieldError{Msg: fmt.Sprintf("record is %d bytes, over the limit of %d bytes", len(raw), lim.MaxRecordBytes)}
	}
	if !utf8.Valid(raw) {
		return nil, &FieldError{Msg: fmt.Sprintf("record is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(raw))}
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, &FieldError{Msg: "empty record"}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(trimmed)
	if err == nil && hasControl(trimmed) && !json.Valid(trimmed) {
		err = errControl // fastjson lets control characters into strings
	}
	if err != nil {
		return nil, &FieldError{Msg: "malformed JSON: " + syntaxMessage(trimmed)}
	}
	if off := loneSurrogate(trimmed); off >= 0 {
		return nil, &FieldError{Msg: fmt.Sprintf("malformed JSON: a lone UTF-16 surrogate escape (%s) at byte %d is not a character", trimmed[off:off+6], off)}
	}
	if v.Type() != fastjson.TypeObject {
		return nil, &FieldError{Msg: "a write must be a JSON object, not " + kindOf(v)}
	}
	w := &Write{}
	var opsV *fastjson.Value
	obj, _ := v.Object()
	var ferr error
	var seen uint8 // key, id, version, ops: each once
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if ferr != nil {
			return
		}
		if bit := topFieldBit(k); bit != 0 {
			if seen&bit != 0 {
				ferr = &FieldError{Field: string(k), Msg: "given twice: a write names each field once"}
				return
			}
			seen |= bit
		}
		switch string(k) {
		case "key":
			ferr = optString(fv, "key", &w.Key)
		case "id":
			ferr = optString(fv, "id", &w.ID)
		case "version":
			if fv.Type() == fastjson.TypeNull {
				return
			}
			n, err := strconv.ParseInt(string(fv.MarshalTo(nil)), 10, 64)
			if fv.Type() != fastjson.TypeNumber || err != nil || n < 0 {
				ferr = &FieldError{Field: "version", Msg: "must be a non-negative integer that fits in int64"}
			}
			w.Version = n
		case "ops":
			opsV = fv
		}
		// Other top-level fields are the producer's metadata: ignored.
	})
	if ferr != nil {
		return nil, ferr
	}
	if opsV == nil || opsV.Type() == fastjson.TypeNull {
		return nil, &FieldError{Field: "ops", Msg: "missing: a write needs at least one op"}
	}
	if opsV.Type() != fastjson.TypeArray {
		return nil, &FieldError{Field: "ops", Msg: "must be an array of ops, not " + kindOf(opsV)}
	}
	ops, _ := opsV.Array()
	if len(ops) == 0 {
		return nil, &FieldError{Field: "ops", Msg: "empty: a write needs at least one op"}
	}
	if lim.MaxOps > 0 && len(ops) > lim.MaxOps {
		return nil, &FieldError{Field: "ops", Msg: fmt.Sprintf("%d ops, over the limit of %d per write", len(ops), lim.MaxOps)}
	}
	w.Ops = make([]Op, len(ops))
	for i, ov := range ops {
		if err := decodeOp(ov, i, &w.Ops[i]); err != nil {
			return nil, err
		}
	}
	if w.Key == "" {
		w.Key = recordKey
	}
	if w.Key == "" {
		w.Key = defaultKey(&w.Ops[0])
	}
	return w, nil
}

// defaultKey is the id of the op's element: the vertex, or the edge's id, or
// its source vertex.
func defaultKey(op *Op) string {
	if op.ID != "" {
		return op.ID
	}
	return op.From
}

// wireOp holds the fields of an op as found, before checking them.
type wireOp struct {
	op, element                      string
	id, label, from, to, props, keys *fastjson.Value
}

var opFields = "an op has op, id, label, from, to, props, keys, element"

func decodeOp(v *fastjson.Value, i int, op *Op) error {
	path := "ops[" + strconv.Itoa(i) + "]"
	if v.Type() != fastjson.TypeObject {
		return &FieldError{Field: path, Msg: "an op must be a JSON object, not " + kindOf(v)}
	}
	var wo wireOp
	var ferr error
	var opSeen, elementSeen bool
	// set keeps a field's value, refusing a field given twice (JSON parsers
	// disagree on which copy wins).
	set := func(k []byte, dst **fastjson.Value, fv *fastjson.Value) {
		if *dst != nil {
			ferr = &FieldError{Field: path + "." + string(k), Msg: "given twice: an op names each field once"}
		}
		*dst = fv
	}
	obj, _ := v.Object()
	obj.Visit(func(k []byte, fv *fastjson.Value) {
		if ferr != nil {
			return
		}
		switch string(k) {
		case "op":
			if opSeen {
				ferr = &FieldError{Field: path + ".op", Msg: "given twice: an op names each field once"}
				return
			}
			opSeen = true
			ferr = optString(fv, path+".op", &wo.op)
		case "element":
			if elementSeen {
				ferr = &FieldError{Field: path + ".element", Msg: "given twice: an op names each field once"}
				return
			}
			elementSeen = true
			ferr = optString(fv, path+".element", &wo.element)
		case "id":
			set(k, &wo.id, fv)
		case "label":
			set(k, &wo.label, fv)
		case "from":
			set(k, &wo.from, fv)
		case "to":
			set(k, &wo.to, fv)
		case "props":
			set(k, &wo.props, fv)
		case "keys":
			set(k, &wo.keys, fv)
		default:
			ferr = &FieldError{Field: path + "." + fieldName(string(k)), Msg: "unknown field (" + opFields + ")"}
		}
	})
	if ferr != nil {
		return ferr
	}
	d := opDecoder{path: path, wo: &wo, op: op}
	switch wo.op {
	case "upsertVertex":
		op.Kind = UpsertVertex
		d.str("id", wo.id, &op.ID)
		d.str("label", wo.label, &op.Label)
		d.forbid("from", wo.from)
		d.forbid("to", wo.to)
		d.forbid("keys", wo.keys)
		d.props()
	case "deleteVertex":
		op.Kind = DeleteVertex
		d.str("id", wo.id, &op.ID)
		d.forbid("label", wo.label)
		d.forbid("from", wo.from)
		d.forbid("to", wo.to)
		d.forbid("props", wo.props)
		d.forbid("keys", wo.keys)
	case "upsertEdge":
		op.Kind = UpsertEdge
		d.edge()
		d.forbid("keys", wo.keys)
		d.props()
	case "deleteEdge":
		op.Kind = DeleteEdge
		d.edge()
		d.forbid("props", wo.props)
		d.forbid("keys", wo.keys)
	case "replaceEdges":
		op.Kind = ReplaceEdges
		d.str("from", wo.from, &op.From)
		d.str("label", wo.label, &op.Label)
		d.forbid("id", wo.id)
		d.forbid("props", wo.props)
		d.forbid("keys", wo.keys)
		d.targets()
	case "dropProps":
		switch wo.element {
		case "vertex":
			op.Kind = DropVertexProps
			d.str("id", wo.id, &op.ID)
			d.forbid("label", wo.label)
			d.forbid("from", wo.from)
			d.forbid("to", wo.to)
		case "edge":
			op.Kind = DropEdgeProps
			d.edge()
		case "":
			return &FieldError{Field: path + ".element", Msg: `missing (required by dropProps): "vertex" or "edge"`}
		default:
			return &FieldError{Field: path + ".element", Msg: fmt.Sprintf(`must be "vertex" or "edge", not %q`, wo.element)}
		}
		d.forbid("props", wo.props)
		d.keys()
	case "":
		return &FieldError{Field: path + ".op", Msg: "missing: one of upsertVertex, upsertEdge, deleteVertex, deleteEdge, replaceEdges, dropProps"}
	default:
		return &FieldError{Field: path + ".op", Msg: fmt.Sprintf("unknown op %q: expected one of upsertVertex, upsertEdge, deleteVertex, deleteEdge, replaceEdges, dropProps", wo.op)}
	}
	if d.err == nil && wo.element != "" && op.Kind != DropVertexProps && op.Kind != DropEdgeProps {
		d.fail("element", fmt.Sprintf("not allowed in %s", wo.op))
	}
	return d.err
}

// opDecoder checks the fields of one op, keeping the first error.
type opDecoder struct {
	path string
	wo   *wireOp
	op   *Op
	err  error
}

func (d *opDecoder) fail(field, msg string) {
	if d.err == nil {
		d.err = &FieldError{Field: d.path + "." + field, Msg: msg}
	}
}

// str reads a required, non-empty string.
func (d *opDecoder) str(field string, v *fastjson.Value, out *string) {
	switch {
	case d.err != nil:
	case v == nil:
		d.fail(field, fmt.Sprintf("missing (required by %s)", d.wo.op))
	case v.Type() != fastjson.TypeString:
		d.fail(field, "must be a string, not "+jsonTypeName(v))
	default:
		b, _ := v.StringBytes()
		if len(b) == 0 {
			d.fail(field, "must not be empty")
		}
		*out = string(b)
	}
}

func (d *opDecoder) forbid(field string, v *fastjson.Value) {
	if d.err == nil && v != nil {
		d.fail(field, fmt.Sprintf("not allowed in %s", d.wo.op))
	}
}

// edge reads what identifies an edge. An edge op always names label, from and
// to, even with an explicit id: both endpoints are part of the write's
// conflict domain, and the engine must know them without reading the graph.
func (d *opDecoder) edge() {
	if id := d.wo.id; id != nil {
		d.str("id", id, &d.op.ID)
		if d.err != nil && d.op.ID == "" && id.Type() == fastjson.TypeString {
			d.err = &FieldError{Field: d.path + ".id", Msg: "must not be empty (omit it for an edge identified by label, from and to)"}
		}
	}
	d.str("label", d.wo.label, &d.op.Label)
	d.str("from", d.wo.from, &d.op.From)
	if d.err == nil && d.wo.to != nil && d.wo.to.Type() != fastjson.TypeString {
		d.fail("to", "must be a string (a vertex id), not "+kindOf(d.wo.to))
	}
	d.str("to", d.wo.to, &d.op.To)
}

func (d *opDecoder) targets() {
	v := d.wo.to
	switch {
	case d.err != nil:
		return
	case v == nil:
		d.fail("to", "missing (required by replaceEdges): an array of vertex ids, possibly empty")
		return
	case v.Type() != fastjson.TypeArray:
		d.fail("to", "must be an array of vertex ids, not "+kindOf(v))
		return
	}
	items, _ := v.Array()
	targets := make([]string, 0, len(items))
	var seen map[string]bool
	for i, it := range items {
		var s string
		d.str("to["+strconv.Itoa(i)+"]", it, &s)
		if d.err != nil {
			if it.Type() != fastjson.TypeString {
				d.err = &FieldError{Field: fmt.Sprintf("%s.to[%d]", d.path, i), Msg: "must be a string (a vertex id), not " + kindOf(it)}
			}
			return
		}
		if len(items) > 1 {
			if seen == nil {
				seen = make(map[string]bool, len(items))
			}
			if seen[s] {
				continue
			}
			seen[s] = true
		}
		targets = append(targets, s)
	}
	d.op.Targets = targets
}

func (d *opDecoder) keys() {
	v := d.wo.keys
	switch {
	case d.err != nil:
		return
	case v == nil:
		d.fail("keys", "missing (required by dropProps)")
		return
	case v.Type() != fastjson.TypeArray:
		d.fail("keys", "must be an array of strings, not "+jsonTypeName(v))
		return
	}
	items, _ := v.Array()
	keys := make([]string, len(items))
	for i, it := range items {
		if it.Type() != fastjson.TypeString {
			d.fail("keys["+strconv.Itoa(i)+"]", "must be a string, not "+jsonTypeName(it))
			return
		}
		b, _ := it.StringBytes()
		keys[i] = string(b)
	}
	d.op.Keys = keys
}

func (d *opDecoder) props() {
	v := d.wo.props
	if d.err != nil || v == nil {
		return
	}
	if v.Type() != fastjson.TypeObject {
		d.fail("props", "must be an object of property values, not "+kindOf(v))
		return
	}
	obj, _ := v.Object()
	if obj.Len() == 0 {
		return
	}
	p := make(Props, obj.Len())
	obj.Visit(func(k []byte, pv *fastjson.Value) {
		if d.err != nil {
			return
		}
		val, err := valueOf(pv)
		if err != nil {
			d.err = &FieldError{Field: d.path + ".props." + fieldName(string(k)), Msg: err.Error()}
			return
		}
		if _, dup := p[string(k)]; dup {
			d.err = &FieldError{Field: d.path + ".props." + fieldName(string(k)), Msg: "given twice: which value is meant is unclear"}
			return
		}
		p[string(k)] = val
	})
	d.op.Props = p
}

// valueOf converts a parsed JSON scalar into a property value, with the
// rules of ParseValue.
func valueOf(v *fastjson.Value) (Value, error) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return String(string(b)), nil
	case fastjson.TypeTrue:
		return Bool(true), nil
	case fastjson.TypeFalse:
		return Bool(false), nil
	case fastjson.TypeNumber:
		var buf [32]byte
		return ParseValue(v.MarshalTo(buf[:0]))
	case fastjson.TypeNull:
		return Value{}, fmt.Errorf("null is not a property value (use dropProps to remove a property)")
	case fastjson.TypeObject:
		return Value{}, fmt.Errorf("an object is not a property value (only string, number and bool are)")
	case fastjson.TypeArray:
		return Value{}, fmt.Errorf("an array is not a property value (only string, number and bool are)")
	}
	return Value{}, fmt.Errorf("invalid value")
}

func optString(v *fastjson.Value, field string, out *string) error {
	switch v.Type() {
	case fastjson.TypeNull:
		return nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		*out = string(b)
		return nil
	}
	return &FieldError{Field: field, Msg: "must be a string, not " + kindOf(v)}
}

// kindOf names a JSON value's type with its article, for error messages.
func kindOf(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeObject:
		return "an object"
	case fastjson.TypeArray:
		return "an array"
	case fastjson.TypeString:
		return "a string"
	case fastjson.TypeNumber:
		return "a number"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "a bool"
	}
	return "null"
}

// jsonTypeName names a JSON value's type without an article.
func jsonTypeName(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "bool"
	}
	return v.Type().String()
}

// syntaxMessage describes a JSON syntax error with encoding/json's words and
// byte offset (only computed on the error path).
func syntaxMessage(raw []byte) string {
	err := json.Unmarshal(raw, new(json.RawMessage))
	if err == nil {
		return "invalid JSON"
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if strings.Contains(err.Error(), "unexpected end of JSON input") {
		return fmt.Sprintf("truncated JSON (input ends at byte %d)", len(raw))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

var errControl = fmt.Errorf("control character in a string")

// topFieldBit numbers the fields a write may hold, to find one given twice
// (JSON parsers disagree on which copy wins).
func topFieldBit(k []byte) uint8 {
	switch string(k) {
	case "key":
		return 1
	case "id":
		return 2
	case "version":
		return 4
	case "ops":
		return 8
	}
	return 0
}

// loneSurrogate returns the offset of a \uD800–\uDFFF escape that is not
// half of a surrogate pair, or -1. The parser keeps such an escape as its
// six characters of text, a string that no other JSON reader agrees on.
func loneSurrogate(b []byte) int {
	if bytes.IndexByte(b, '\\') < 0 {
		return -1
	}
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // an escape of two characters: \\ \" \n …
			continue
		}
		r, ok := hex4(i)
		switch {
		case !ok:
		case r >= 0xD800 && r <= 0xDBFF:
			if lo, ok := hex4(i + 6); ok && lo >= 0xDC00 && lo <= 0xDFFF {
				i += 11
				continue
			}
			return i
		case r >= 0xDC00 && r <= 0xDFFF:
			return i
		}
		i += 5
	}
	return -1
}

// hasControl reports whether b holds a byte below 0x20: legal only as
// whitespace between tokens, which NDJSON records rarely have.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}
