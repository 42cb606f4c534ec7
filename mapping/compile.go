package mapping

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/graftdb/graft"
	"go.yaml.in/yaml/v3"
)

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
