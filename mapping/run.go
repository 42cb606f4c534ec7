package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
	"github.com/graftdb/graft"
)

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
	return m.mapLimited(ev, graft.DefaultLimits.MaxOps)
}

// bound counts what a write's mapping does, so that no event can make it
// use unbounded time or memory: at most maxOps ops, and at most
// StepsPerOp × maxOps loop items visited (nested for: blocks whose if:
// filters nearly everything would otherwise run for hours).
type bound struct {
	ops, steps, maxOps int
}

// StepsPerOp is how many for: items a mapping may visit per op it may emit.
const StepsPerOp = 10

func (b *bound) step(path string) error {
	b.steps++
	if b.steps > StepsPerOp*b.maxOps {
		return fmt.Errorf("%s: more than %d loop items visited for one event (%d × limits.max_ops): the event or the rules are too large", path, StepsPerOp*b.maxOps, StepsPerOp)
	}
	return nil
}

func (m *Mapper) mapLimited(ev Event, maxOps int) (*graft.Write, string, error) {
	if maxOps <= 0 {
		maxOps = graft.DefaultLimits.MaxOps
	}
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
		w, err := r.write(env, &bound{maxOps: maxOps})
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

func (r *rule) write(env map[string]any, b *bound) (*graft.Write, error) {
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
		if w.Ops, err = op.emit(env, w.Ops, b); err != nil {
			return nil, err
		}
	}
	if len(w.Ops) == 0 {
		return nil, errors.New("no op: every op's if: was false")
	}
	return w, nil
}

// emit appends the op's ops for env.
func (op *opSpec) emit(env map[string]any, out []graft.Op, b *bound) ([]graft.Op, error) {
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
			if err := b.step(op.path); err != nil {
				return nil, err
			}
			env[op.as] = item
			if ok, err := holds(); err != nil {
				return nil, err
			} else if !ok {
				continue
			}
			for _, sub := range op.ops {
				if out, err = sub.emit(env, out, b); err != nil {
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
	if b.ops++; b.ops > b.maxOps {
		return nil, fmt.Errorf("%s: more than %d ops for one event (limits.max_ops)", op.path, b.maxOps)
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
	w, rule, err := m.mapLimited(Event{Fields: fields, Topic: TopicOf(rec.Pos.Partition), SourceKey: rec.Key}, lim.MaxOps)
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
