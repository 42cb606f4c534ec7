// Package mapping turns domain events into graph writes with declarative
// rules (docs/mapping.md): a rule is selected by the source topic or by a
// condition over the event, and produces one write whose key, ids, labels
// and property values are expressions (github.com/expr-lang/expr) over the
// event, with iteration over arrays and conditions.
//
// Rules are compiled at load time; errors name the file, the rule and the
// field. At run time, an event no rule matches is unmapped (a dead letter
// with class "unmapped", or skipped), and a rule that fails on an event
// names itself, the field and the reason.
package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/graftdb/graft"
)

// Mapper holds compiled rules.
type Mapper struct {
	rules       []*rule
	skip        bool // unmapped events are skipped, not dead-lettered
	topicPrefix string
}

type rule struct {
	name  string
	topic *regexp.Regexp
	when  *vm.Program
	key   *vm.Program
	id    *vm.Program
	ops   []*opSpec
}

// opSpec is one op of a rule, or a block iterating over a list.
type opSpec struct {
	path string // "ops[1].for.ops[0]", for errors
	kind graft.OpKind
	cond *vm.Program // if:

	// for blocks
	each *vm.Program
	as   string
	ops  []*opSpec

	id, label, from, to, targets, keys *vm.Program
	props                              []propSpec
}

type propSpec struct {
	name string
	val  *vm.Program
}

// ErrUnmapped is the cause of an event no rule matches.
var ErrUnmapped = graft.ErrUnmapped

// TopicPrefix is where the router publishes a rule's writes: prefix + rule name.
func (m *Mapper) TopicPrefix() string { return m.topicPrefix }

// Load reads and compiles a mapping file.
func Load(path string) (*Mapper, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	m, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// file is the YAML shape.
type file struct {
	Unmapped    string      `yaml:"unmapped"`     // dead-letter (default) or skip
	TopicPrefix string      `yaml:"topic_prefix"` // router: default "graph.write."
	Rules       []yaml.Node `yaml:"rules"`
}

// Parse compiles a mapping document.
func Parse(raw []byte) (*Mapper, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	m := &Mapper{topicPrefix: "graph.write."}
	if f.TopicPrefix != "" {
		m.topicPrefix = f.TopicPrefix
	}
	switch f.Unmapped {
	case "", "dead-letter":
	case "skip":
		m.skip = true
	default:
		return nil, fmt.Errorf("unmapped: %q is not dead-letter or skip", f.Unmapped)
	}
	if len(f.Rules) == 0 {
		return nil, errors.New("rules: no rule")
	}
	var errs []error
	names := map[string]bool{}
	for i := range f.Rules {
		r, err := compileRule(&f.Rules[i], i)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if names[r.name] {
			errs = append(errs, fmt.Errorf("line %d: rule %s: the name is used twice", f.Rules[i].Line, r.name))
		}
		names[r.name] = true
		m.rules = append(m.rules, r)
	}
	return m, errors.Join(errs...)
}

type ruleYAML struct {
	Name  string      `yaml:"name"`
	Topic string      `yaml:"topic"`
	When  string      `yaml:"when"`
	Key   string      `yaml:"key"`
	ID    string      `yaml:"id"`
	Ops   []yaml.Node `yaml:"ops"`
}

var ruleName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)

var ruleFields = map[string]bool{"name": true, "topic": true, "when": true, "key": true, "id": true, "ops": true}

func compileRule(n *yaml.Node, i int) (*rule, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: rules[%d]: want a mapping (name, topic, when, key, id, ops)", n.Line, i)
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := n.Content[j]; !ruleFields[k.Value] {
			return nil, fmt.Errorf("line %d: rules[%d]: unknown field %q (name, topic, when, key, id, ops)", k.Line, i, k.Value)
		}
	}
	var ry ruleYAML
	if err := n.Decode(&ry); err != nil {
		return nil, fmt.Errorf("rules[%d]: %s", i, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	where := fmt.Sprintf("line %d: rule %s", n.Line, ry.Name)
	if !ruleName.MatchString(ry.Name) {
		return nil, fmt.Errorf("line %d: rules[%d].name: %q: letters, digits, _ . - (it names a topic)", n.Line, i, ry.Name)
	}
	r := &rule{name: ry.Name}
	var errs []error
	fail := func(field string, err error) { errs = append(errs, fmt.Errorf("%s: %s: %w", where, field, err)) }
	if ry.Topic != "" {
		re, err := regexp.Compile("^(?:" + ry.Topic + ")$")
		if err != nil {
			fail("topic", err)
		}
		r.topic = re
	}
	var err error
	if ry.When != "" {
		if r.when, err = compile(ry.When); err != nil {
			fail("when", err)
		}
	}
	if ry.Key == "" {
		fail("key", errors.New("required: the ordering key, an expression (organizationId)"))
	} else if r.key, err = compile(ry.Key); err != nil {
		fail("key", err)
	}
	if ry.ID != "" {
		if r.id, err = compile(ry.ID); err != nil {
			fail("id", err)
		}
	}
	if len(ry.Ops) == 0 {
		fail("ops", errors.New("required: at least one op"))
	}
	for j := range ry.Ops {
		op, err := compileOp(&ry.Ops[j], fmt.Sprintf("ops[%d]", j))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		r.ops = append(r.ops, op)
	}
	return r, errors.Join(errs...)
}

func compile(src string) (*vm.Program, error) {
	return expr.Compile(src, expr.AllowUndefinedVariables())
}

// opFields are the fields each op takes (every value an expression, but
// dropProps's element).
var opFields = map[string][]string{
	"upsertVertex": {"id", "label", "props"},
	"deleteVertex": {"id"},
	"upsertEdge":   {"label", "from", "to", "id?", "props"},
	"deleteEdge":   {"label", "from", "to", "id?"},
	"replaceEdges": {"from", "label", "to"},
	"dropProps":    {"element", "keys", "id?", "label?", "from?", "to?"},
}

func compileOp(n *yaml.Node, path string) (*opSpec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %s: want a mapping (upsertVertex: {...}, or for: ... ops: [...])", n.Line, path)
	}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		fields[n.Content[i].Value] = n.Content[i+1]
	}
	op := &opSpec{path: path}
	var err error
	if c, ok := fields["if"]; ok {
		if op.cond, err = compile(c.Value); err != nil {
			return nil, fmt.Errorf("line %d: %s.if: %w", c.Line, path, err)
		}
		delete(fields, "if")
	}
	if each, ok := fields["for"]; ok {
		op.path = path + ".for"
		if op.each, err = compile(each.Value); err != nil {
			return nil, fmt.Errorf("line %d: %s.for: %w", each.Line, path, err)
		}
		op.as = "it"
		if as, ok := fields["as"]; ok {
			op.as = as.Value
		}
		body, ok := fields["ops"]
		if !ok || body.Kind != yaml.SequenceNode || len(body.Content) == 0 {
			return nil, fmt.Errorf("line %d: %s.for: needs ops: [...]", n.Line, path)
		}
		for k := range fields {
			if k != "for" && k != "as" && k != "ops" {
				return nil, fmt.Errorf("line %d: %s.for: unknown field %q (for, as, if, ops)", n.Line, path, k)
			}
		}
		var errs []error
		for j, c := range body.Content {
			sub, err := compileOp(c, fmt.Sprintf("%s.for.ops[%d]", path, j))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			op.ops = append(op.ops, sub)
		}
		return op, errors.Join(errs...)
	}
	if len(fields) != 1 {
		return nil, fmt.Errorf("line %d: %s: want exactly one op (upsertVertex, deleteVertex, upsertEdge, deleteEdge, replaceEdges, dropProps) besides if:", n.Line, path)
	}
	for name, body := range fields {
		want, ok := opFields[name]
		if !ok {
			return nil, fmt.Errorf("line %d: %s: unknown op %q (upsertVertex, deleteVertex, upsertEdge, deleteEdge, replaceEdges, dropProps, or for:)", n.Line, path, name)
		}
		path += "." + name
		op.path = path
		if body.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: %s: want a mapping of fields", body.Line, path)
		}
		given := map[string]*yaml.Node{}
		for i := 0; i+1 < len(body.Content); i += 2 {
			given[body.Content[i].Value] = body.Content[i+1]
		}
		if c, ok := given["if"]; ok { // if: inside the op's fields, too
			if op.cond != nil {
				return nil, fmt.Errorf("line %d: %s.if: given twice", c.Line, path)
			}
			if op.cond, err = compile(c.Value); err != nil {
				return nil, fmt.Errorf("line %d: %s.if: %w", c.Line, path, err)
			}
			delete(given, "if")
		}
		for f, v := range given {
			known := false
			for _, w := range want {
				known = known || strings.TrimSuffix(w, "?") == f
			}
			if !known {
				return nil, fmt.Errorf("line %d: %s: unknown field %q (%s, if)", v.Line, path, f, strings.ReplaceAll(strings.Join(want, ", "), "?", ""))
			}
		}
		for _, f := range want {
			f, optional := strings.CutSuffix(f, "?")
			v, has := given[f]
			delete(given, f)
			if !has {
				if !optional && !(f == "props") {
					return nil, fmt.Errorf("line %d: %s.%s: required", body.Line, path, f)
				}
				continue
			}
			if err := op.set(name, f, v, path); err != nil {
				return nil, err
			}
		}
		if name == "dropProps" && op.kind == graft.DropVertexProps && op.id == nil {
			return nil, fmt.Errorf("line %d: %s: element vertex needs id", body.Line, path)
		}
		if name == "dropProps" && op.kind == graft.DropEdgeProps && (op.label == nil || op.from == nil || op.to == nil) {
			return nil, fmt.Errorf("line %d: %s: element edge needs label, from and to", body.Line, path)
		}
	}
	return op, nil
}

func (op *opSpec) set(name, field string, v *yaml.Node, path string) error {
	at := func(err error) error { return fmt.Errorf("line %d: %s.%s: %w", v.Line, path, field, err) }
	if field == "element" {
		switch v.Value {
		case "vertex":
			op.kind = graft.DropVertexProps
		case "edge":
			op.kind = graft.DropEdgeProps
		default:
			return at(fmt.Errorf("%q: vertex or edge", v.Value))
		}
		return nil
	}
	switch name {
	case "upsertVertex":
		op.kind = graft.UpsertVertex
	case "deleteVertex":
		op.kind = graft.DeleteVertex
	case "upsertEdge":
		op.kind = graft.UpsertEdge
	case "deleteEdge":
		op.kind = graft.DeleteEdge
	case "replaceEdges":
		op.kind = graft.ReplaceEdges
	}
	if field == "props" {
		if v.Kind != yaml.MappingNode {
			return at(errors.New("want a mapping of property name to expression"))
		}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, e := v.Content[i], v.Content[i+1]
			p, err := compile(e.Value)
			if err != nil {
				return fmt.Errorf("line %d: %s.props.%s: %w", e.Line, path, k.Value, err)
			}
			op.props = append(op.props, propSpec{name: k.Value, val: p})
		}
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		return at(errors.New("want an expression"))
	}
	p, err := compile(v.Value)
	if err != nil {
		return at(err)
	}
	switch field {
	case "id":
		op.id = p
	case "label":
		op.label = p
	case "from":
		op.from = p
	case "to":
		if name == "replaceEdges" {
			op.targets = p
		} else {
			op.to = p
		}
	case "keys":
		op.keys = p
	}
	return nil
}

// Event is a decoded domain event with where it came from.
type Event struct {
	Fields    map[string]any
	Topic     string // the source topic (Kafka), stream, or file
	SourceKey string
}

// DecodeEvent parses a JSON object; numbers without a fraction or exponent
// that fit in int64 stay int64 exactly, others become float64.
func DecodeEvent(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("event: malformed JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, errors.New("event: more than one JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("event: not a JSON object")
	}
	return convertNumbers(m).(map[string]any), nil
}

func convertNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = convertNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = convertNumbers(e)
		}
		return x
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	}
	return v
}

// Map maps an event to a write, and names the rule. A nil write and nil
// error: no rule matched and unmapped events are skipped.
func (m *Mapper) Map(ev Event) (*graft.Write, string, error) {
	env := make(map[string]any, len(ev.Fields)+3)
	for k, v := range ev.Fields {
		env[k] = v
	}
	env["event"], env["topic"], env["sourceKey"] = ev.Fields, ev.Topic, ev.SourceKey
	for _, r := range m.rules {
		if r.topic != nil && !r.topic.MatchString(ev.Topic) {
			continue
		}
		if r.when != nil {
			ok, err := run(r.when, env)
			if err != nil {
				return nil, r.name, fmt.Errorf("rule %s: when: %w", r.name, err)
			}
			if b, isBool := ok.(bool); !isBool || !b {
				continue
			}
		}
		w, err := r.write(env)
		if err != nil {
			return nil, r.name, fmt.Errorf("rule %s: %w", r.name, err)
		}
		return w, r.name, nil
	}
	if m.skip {
		return nil, "", nil
	}
	return nil, "", ErrUnmapped
}

func run(p *vm.Program, env map[string]any) (any, error) {
	v, err := expr.Run(p, env)
	if err != nil {
		// expr's runtime errors carry the source excerpt; one line is enough.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		return nil, errors.New(msg)
	}
	return v, nil
}

func (r *rule) write(env map[string]any) (*graft.Write, error) {
	w := &graft.Write{}
	var err error
	if w.Key, err = str(r.key, env, "key"); err != nil {
		return nil, err
	}
	if r.id != nil {
		if w.ID, err = str(r.id, env, "id"); err != nil {
			return nil, err
		}
	}
	for _, op := range r.ops {
		if w.Ops, err = op.emit(env, w.Ops); err != nil {
			return nil, err
		}
	}
	if len(w.Ops) == 0 {
		return nil, errors.New("no op: every op's if: was false")
	}
	return w, nil
}

// emit appends the op's ops for env.
func (op *opSpec) emit(env map[string]any, out []graft.Op) ([]graft.Op, error) {
	// On a for block, if: filters the items (it sees the item); on an op,
	// it decides whether the op is emitted.
	holds := func() (bool, error) {
		if op.cond == nil {
			return true, nil
		}
		v, err := run(op.cond, env)
		if err != nil {
			return false, fmt.Errorf("%s.if: %w", op.path, err)
		}
		b, ok := v.(bool)
		return ok && b, nil
	}
	if op.each == nil {
		if ok, err := holds(); err != nil || !ok {
			return out, err
		}
	}
	if op.each != nil {
		v, err := run(op.each, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op.path, err)
		}
		if v == nil {
			return out, nil // an absent array: nothing to iterate
		}
		list, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: want an array, got %s", op.path, describe(v))
		}
		saved, had := env[op.as]
		defer func() {
			if had {
				env[op.as] = saved
			} else {
				delete(env, op.as)
			}
		}()
		for _, item := range list {
			env[op.as] = item
			if ok, err := holds(); err != nil {
				return nil, err
			} else if !ok {
				continue
			}
			for _, sub := range op.ops {
				if out, err = sub.emit(env, out); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	o := graft.Op{Kind: op.kind}
	var err error
	field := func(p *vm.Program, name string, dst *string) {
		if err == nil && p != nil {
			*dst, err = str(p, env, op.path+"."+name)
		}
	}
	field(op.id, "id", &o.ID)
	field(op.label, "label", &o.Label)
	field(op.from, "from", &o.From)
	field(op.to, "to", &o.To)
	if err == nil && op.targets != nil {
		o.Targets, err = strs(op.targets, env, op.path+".to")
	}
	if err == nil && op.keys != nil {
		o.Keys, err = strs(op.keys, env, op.path+".keys")
	}
	if err != nil {
		return nil, err
	}
	for _, p := range op.props {
		v, err := run(p.val, env)
		if err != nil {
			return nil, fmt.Errorf("%s.props.%s: %w", op.path, p.name, err)
		}
		if v == nil {
			continue // absent in the event: the property is left as it is
		}
		val, err := value(v)
		if err != nil {
			return nil, fmt.Errorf("%s.props.%s: %w", op.path, p.name, err)
		}
		if o.Props == nil {
			o.Props = graft.Props{}
		}
		o.Props[p.name] = val
	}
	return append(out, o), nil
}

func str(p *vm.Program, env map[string]any, field string) (string, error) {
	v, err := run(p, env)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %s (use string(...) to convert)", field, describe(v))
	}
	return s, nil
}

func strs(p *vm.Program, env map[string]any, field string) ([]string, error) {
	v, err := run(p, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if v == nil {
		return []string{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		if ss, ok := v.([]string); ok {
			return ss, nil
		}
		return nil, fmt.Errorf("%s: want an array of strings, got %s", field, describe(v))
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want a string, got %s", field, i, describe(e))
		}
		out[i] = s
	}
	return out, nil
}

func value(v any) (graft.Value, error) {
	switch x := v.(type) {
	case string:
		return graft.String(x), nil
	case bool:
		return graft.Bool(x), nil
	case int64:
		return graft.Int(x), nil
	case int:
		return graft.Int(int64(x)), nil
	case float64:
		return graft.Float(x), nil
	}
	return graft.Value{}, fmt.Errorf("want a string, number or boolean, got %s", describe(v))
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing (null or absent)"
	case string:
		return fmt.Sprintf("the string %q", x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// Decoder returns the engine's record decoder for these rules: the record's
// value is an event; the write it maps to is checked as the wire format's
// decoder checks a write (limits, required fields).
func (m *Mapper) Decoder(lim graft.Limits) func(graft.Record) (*graft.Write, error) {
	return func(rec graft.Record) (*graft.Write, error) {
		w, _, err := m.MapRecord(rec, lim)
		return w, err
	}
}

// MapRecord maps one record, and names the rule that matched.
func (m *Mapper) MapRecord(rec graft.Record, lim graft.Limits) (*graft.Write, string, error) {
	fields, err := DecodeEvent(rec.Value)
	if err != nil {
		return nil, "", err
	}
	w, rule, err := m.Map(Event{Fields: fields, Topic: TopicOf(rec.Pos.Partition), SourceKey: rec.Key})
	if err != nil || w == nil {
		return nil, rule, err
	}
	checked, err := graft.Decode(w.AppendJSON(nil), "", lim)
	if err != nil {
		return nil, rule, fmt.Errorf("rule %s: the write it produced: %w", rule, err)
	}
	return checked, rule, nil
}

// TopicOf is the topic of a position's partition: "graph.events/3" (Kafka)
// gives "graph.events"; other sources' partitions are returned whole.
func TopicOf(partition string) string {
	if i := strings.LastIndexByte(partition, '/'); i > 0 {
		if _, err := strconv.Atoi(partition[i+1:]); err == nil {
			return partition[:i]
		}
	}
	return partition
}
