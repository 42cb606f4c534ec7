package graft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what one record may hold.
type Limits struct {
	MaxRecordBytes int // bytes of the raw record
	MaxOps         int // ops per write
}

// DefaultLimits are the limits used when none are configured.
var DefaultLimits = Limits{MaxRecordBytes: 1 << 20, MaxOps: 10000}

type wireWrite struct {
	Key     json.RawMessage `json:"key"`
	ID      json.RawMessage `json:"id"`
	Version json.RawMessage `json:"version"`
	Ops     json.RawMessage `json:"ops"`
}

type wireOp struct {
	Op      string          `json:"op"`
	ID      *string         `json:"id"`
	Label   *string         `json:"label"`
	From    *string         `json:"from"`
	To      json.RawMessage `json:"to"`
	Props   json.RawMessage `json:"props"`
	Keys    []string        `json:"keys"`
	Element *string         `json:"element"`
}

// Decode parses one record of the wire format (DESIGN.md, "The logical
// write"). recordKey is the source's key for the record, used when the write
// has no "key". Every error is a *FieldError naming the field at fault.
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
	if trimmed[0] != '{' {
		if err := json.Unmarshal(trimmed, new(json.RawMessage)); err != nil {
			return nil, &FieldError{Msg: "malformed JSON: " + jsonMessage(err, trimmed)}
		}
		return nil, &FieldError{Msg: "a write must be a JSON object, not " + jsonKind(trimmed)}
	}
	var ww wireWrite
	if err := json.Unmarshal(trimmed, &ww); err != nil {
		return nil, &FieldError{Msg: "malformed JSON: " + jsonMessage(err, trimmed)}
	}
	w := &Write{}
	if err := decodeString(ww.Key, "key", &w.Key); err != nil {
		return nil, err
	}
	if err := decodeString(ww.ID, "id", &w.ID); err != nil {
		return nil, err
	}
	if v := bytes.TrimSpace(ww.Version); len(v) > 0 && string(v) != "null" {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return nil, &FieldError{Field: "version", Msg: "must be a non-negative integer that fits in int64"}
		}
		w.Version = n
	}
	ops := bytes.TrimSpace(ww.Ops)
	if len(ops) == 0 || string(ops) == "null" {
		return nil, &FieldError{Field: "ops", Msg: "missing: a write needs at least one op"}
	}
	if ops[0] != '[' {
		return nil, &FieldError{Field: "ops", Msg: "must be an array of ops, not " + jsonKind(ops)}
	}
	var rawOps []json.RawMessage
	if err := json.Unmarshal(ops, &rawOps); err != nil {
		return nil, &FieldError{Field: "ops", Msg: jsonMessage(err, ops)}
	}
	if len(rawOps) == 0 {
		return nil, &FieldError{Field: "ops", Msg: "empty: a write needs at least one op"}
	}
	if lim.MaxOps > 0 && len(rawOps) > lim.MaxOps {
		return nil, &FieldError{Field: "ops", Msg: fmt.Sprintf("%d ops, over the limit of %d per write", len(rawOps), lim.MaxOps)}
	}
	w.Ops = make([]Op, len(rawOps))
	for i, r := range rawOps {
		if err := decodeOp(r, fmt.Sprintf("ops[%d]", i), &w.Ops[i]); err != nil {
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

func decodeOp(raw json.RawMessage, path string, op *Op) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return &FieldError{Field: path, Msg: "an op must be a JSON object, not " + jsonKind(raw)}
	}
	var wo wireOp
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&wo); err != nil {
		return opDecodeError(err, path, raw)
	}
	need := func(field string, v *string) error {
		if v == nil {
			return &FieldError{Field: path + "." + field, Msg: fmt.Sprintf("missing (required by %s)", wo.Op)}
		}
		if *v == "" {
			return &FieldError{Field: path + "." + field, Msg: "must not be empty"}
		}
		return nil
	}
	forbid := func(field string, set bool) error {
		if set {
			return &FieldError{Field: path + "." + field, Msg: fmt.Sprintf("not allowed in %s", wo.Op)}
		}
		return nil
	}
	var err error
	switch wo.Op {
	case "upsertVertex":
		op.Kind = UpsertVertex
		err = errors.Join(need("id", wo.ID), need("label", wo.Label), forbid("from", wo.From != nil),
			forbid("to", wo.To != nil), forbid("keys", wo.Keys != nil), forbid("element", wo.Element != nil))
	case "deleteVertex":
		op.Kind = DeleteVertex
		err = errors.Join(need("id", wo.ID), forbid("label", wo.Label != nil), forbid("from", wo.From != nil),
			forbid("to", wo.To != nil), forbid("props", wo.Props != nil), forbid("keys", wo.Keys != nil), forbid("element", wo.Element != nil))
	case "upsertEdge", "deleteEdge":
		op.Kind = UpsertEdge
		if wo.Op == "deleteEdge" {
			op.Kind = DeleteEdge
		}
		err = errors.Join(edgeIdentity(&wo, need, path), forbid("keys", wo.Keys != nil), forbid("element", wo.Element != nil))
		if op.Kind == DeleteEdge {
			err = errors.Join(err, forbid("props", wo.Props != nil))
		}
	case "replaceEdges":
		op.Kind = ReplaceEdges
		err = errors.Join(need("from", wo.From), need("label", wo.Label), forbid("id", wo.ID != nil),
			forbid("props", wo.Props != nil), forbid("keys", wo.Keys != nil), forbid("element", wo.Element != nil))
		if err == nil {
			err = decodeTargets(wo.To, path+".to", &op.Targets)
		}
	case "dropProps":
		if wo.Element == nil {
			return &FieldError{Field: path + ".element", Msg: `missing (required by dropProps): "vertex" or "edge"`}
		}
		switch *wo.Element {
		case "vertex":
			op.Kind = DropVertexProps
			err = errors.Join(need("id", wo.ID), forbid("label", wo.Label != nil), forbid("from", wo.From != nil), forbid("to", wo.To != nil))
		case "edge":
			op.Kind = DropEdgeProps
			err = edgeIdentity(&wo, need, path)
		default:
			return &FieldError{Field: path + ".element", Msg: fmt.Sprintf(`must be "vertex" or "edge", not %q`, *wo.Element)}
		}
		if err == nil {
			err = forbid("props", wo.Props != nil)
		}
		if err == nil && wo.Keys == nil {
			err = &FieldError{Field: path + ".keys", Msg: "missing (required by dropProps)"}
		}
	case "":
		return &FieldError{Field: path + ".op", Msg: "missing: one of upsertVertex, upsertEdge, deleteVertex, deleteEdge, replaceEdges, dropProps"}
	default:
		return &FieldError{Field: path + ".op", Msg: fmt.Sprintf("unknown op %q: expected one of upsertVertex, upsertEdge, deleteVertex, deleteEdge, replaceEdges, dropProps", wo.Op)}
	}
	if err != nil {
		return firstError(err)
	}
	if wo.ID != nil {
		op.ID = *wo.ID
	}
	if wo.Label != nil {
		op.Label = *wo.Label
	}
	if wo.From != nil {
		op.From = *wo.From
	}
	if op.Kind.IsEdge() {
		_ = json.Unmarshal(wo.To, &op.To) // checked by edgeIdentity
	}
	op.Keys = wo.Keys
	if wo.Props != nil {
		p, err := parseProps(wo.Props, path+".props")
		if err != nil {
			return err
		}
		op.Props = p
	}
	return nil
}

// edgeIdentity checks the fields that identify an edge. An edge op always
// names label, from and to, even when it also names the edge's id: both
// endpoints are part of the write's conflict domain, and the engine must know
// them without reading the graph.
func edgeIdentity(wo *wireOp, need func(string, *string) error, path string) error {
	if wo.ID != nil && *wo.ID == "" {
		return &FieldError{Field: path + ".id", Msg: "must not be empty (omit it for an edge identified by label, from and to)"}
	}
	if err := errors.Join(need("label", wo.Label), need("from", wo.From)); err != nil {
		return err
	}
	to := bytes.TrimSpace(wo.To)
	if len(to) == 0 {
		return &FieldError{Field: path + ".to", Msg: fmt.Sprintf("missing (required by %s)", wo.Op)}
	}
	var s string
	if to[0] != '"' || json.Unmarshal(to, &s) != nil {
		return &FieldError{Field: path + ".to", Msg: "must be a string (a vertex id), not " + jsonKind(to)}
	}
	if s == "" {
		return &FieldError{Field: path + ".to", Msg: "must not be empty"}
	}
	return nil
}

func decodeTargets(raw json.RawMessage, path string, out *[]string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return &FieldError{Field: path, Msg: "missing (required by replaceEdges): an array of vertex ids, possibly empty"}
	}
	if raw[0] != '[' {
		return &FieldError{Field: path, Msg: "must be an array of vertex ids, not " + jsonKind(raw)}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return &FieldError{Field: path, Msg: jsonMessage(err, raw)}
	}
	targets := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		var s string
		if len(it) == 0 || it[0] != '"' || json.Unmarshal(it, &s) != nil {
			return &FieldError{Field: fmt.Sprintf("%s[%d]", path, i), Msg: "must be a string (a vertex id), not " + jsonKind(it)}
		}
		if s == "" {
			return &FieldError{Field: fmt.Sprintf("%s[%d]", path, i), Msg: "must not be empty"}
		}
		if !seen[s] {
			seen[s] = true
			targets = append(targets, s)
		}
	}
	*out = targets
	return nil
}

func decodeString(raw json.RawMessage, field string, out *string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '"' {
		return &FieldError{Field: field, Msg: "must be a string, not " + jsonKind(raw)}
	}
	return json.Unmarshal(raw, out)
}

// opDecodeError turns an encoding/json error into a FieldError under path.
func opDecodeError(err error, path string, raw []byte) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		want := "a string"
		if field == "keys" {
			want = "an array of strings"
		} else if strings.HasPrefix(field, "keys") {
			want = "a string"
		}
		return &FieldError{Field: path + "." + field, Msg: fmt.Sprintf("must be %s, not %s", want, te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		return &FieldError{Field: path + "." + fieldName(name), Msg: "unknown field (an op has op, id, label, from, to, props, keys, element)"}
	}
	return &FieldError{Field: path, Msg: jsonMessage(err, raw)}
}

func jsonMessage(err error, raw []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	if errors.Is(err, errUnexpectedEnd) || strings.Contains(err.Error(), "unexpected end of JSON input") {
		return fmt.Sprintf("truncated JSON (input ends at byte %d)", len(raw))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

// jsonKind names the JSON type that raw starts with, for error messages.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a bool"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return fmt.Sprintf("invalid JSON (%.20q)", raw)
}

func firstError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return err
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
