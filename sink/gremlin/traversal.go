package gremlin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
)

// Dialect is what a Gremlin server understands.
type Dialect string

const (
	// Neptune: mergeV/mergeE (TinkerPop 3.6+), user-supplied ids, single
	// cardinality set explicitly (Neptune's default is set).
	Neptune Dialect = "neptune"
	// TinkerGraph (Gremlin Server 3.6+): as Neptune.
	TinkerGraph Dialect = "tinkergraph"
	// JanusGraph: no user-supplied ids by default and older servers
	// without mergeV/mergeE: coalesce-based upserts, Graft's ids stored in
	// a property (IDProperty; index it).
	JanusGraph Dialect = "janusgraph"
)

// DefaultIDProperty holds Graft's ids in the JanusGraph dialect.
const DefaultIDProperty = "graft_id"

// A traversal is built as a list of steps first, then turned into bytecode:
// the list renders deterministically (golden files, logs) and counts its
// steps (Neptune's limit). Every value is a bytecode argument; no string is
// ever spliced into Gremlin text.
type (
	traversal []step
	step      struct {
		name string
		args []any // string, int64, float64, bool, traversal, mergeMap, pred, enum
	}
	// mergeMap is a mergeV/mergeE match map, keys in a fixed order.
	mergeMap []kv
	kv       struct {
		k enum
		v any
	}
	// pred is P.within(values...).
	pred struct {
		op     string
		values []any
	}
	// enum is a Gremlin enum value (T.id, single, Direction.OUT, ...).
	enum struct {
		name string
		val  any
	}
)

var (
	tID     = enum{"id", gremlingo.T.Id}
	tLabel  = enum{"label", gremlingo.T.Label}
	dirFrom = enum{"OUT", gremlingo.Direction.From}
	dirTo   = enum{"IN", gremlingo.Direction.To}
	cardOne = enum{"single", gremlingo.Cardinality.Single}
	// stepCount ends a batch: a barrier, so every step before it runs
	// (Gremlin is lazy), with a one-number answer. Not none()/discard():
	// TinkerPop 3.8 renamed none() to discard() and gave none() another
	// meaning, and Neptune speaks 3.7.
	stepCount = step{name: "count"}
)

func s(name string, args ...any) step { return step{name: name, args: args} }

// steps counts the steps, nested traversals included.
func (t traversal) steps() int {
	n := 0
	for _, st := range t {
		n++
		for _, a := range st.args {
			if sub, ok := a.(traversal); ok {
				n += sub.steps()
			}
		}
	}
	return n
}

// bytecode turns the steps into the driver's bytecode.
func (t traversal) bytecode() *gremlingo.Bytecode {
	bc := gremlingo.NewBytecode(nil)
	t.appendTo(bc)
	return bc
}

// appendTo adds the steps to bc.
func (t traversal) appendTo(bc *gremlingo.Bytecode) {
	for _, st := range t {
		args := make([]any, len(st.args))
		for i, a := range st.args {
			args[i] = toArg(a)
		}
		if err := bc.AddStep(st.name, args...); err != nil {
			panic(fmt.Sprintf("gremlin: step %s: %v", st.name, err)) // only for unconvertible arguments: a bug here
		}
	}
}

func toArg(a any) any {
	switch v := a.(type) {
	case traversal:
		return v.bytecode()
	case mergeMap:
		m := make(map[any]any, len(v))
		for _, e := range v {
			m[e.k.val] = toArg(e.v)
		}
		return m
	case pred:
		return gremlingo.P.Within(v.values...)
	case enum:
		return v.val
	}
	return a
}

// String renders the steps as Gremlin text, for reading only.
func (t traversal) String() string {
	var b strings.Builder
	for i, st := range t {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(st.name)
		b.WriteByte('(')
		for j, a := range st.args {
			if j > 0 {
				b.WriteByte(',')
			}
			writeArg(&b, a)
		}
		b.WriteByte(')')
	}
	return b.String()
}

func writeArg(b *strings.Builder, a any) {
	switch v := a.(type) {
	case traversal:
		b.WriteString("__." + v.String())
	case mergeMap:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(e.k.name + ":")
			writeArg(b, e.v)
		}
		b.WriteByte(']')
	case pred:
		b.WriteString(v.op + "(")
		for i, x := range v.values {
			if i > 0 {
				b.WriteByte(',')
			}
			writeArg(b, x)
		}
		b.WriteByte(')')
	case enum:
		b.WriteString(v.name)
	case string:
		b.WriteString(strconv.Quote(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10) + "L")
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64) + "d")
	default:
		fmt.Fprint(b, v)
	}
}

// builder turns a batch into one traversal: one request, so one
// transaction on Neptune.
type builder struct {
	dialect Dialect
	idProp  string
}

// batch returns the traversal for the writes, their ops in order.
func (b *builder) batch(ws []*graft.Write) traversal {
	t := traversal{s("inject", int64(0))}
	for wi, w := range ws {
		for i := range w.Ops {
			t = b.op(t, &w.Ops[i], wi)
		}
	}
	return append(t, stepCount)
}

func (b *builder) op(t traversal, op *graft.Op, write int) traversal {
	switch op.Kind {
	case graft.UpsertVertex:
		t = b.upsertVertex(t, op.ID, op.Label, write)
		return b.props(t, op.Props, true)
	case graft.DeleteVertex:
		return append(t, s("sideEffect", append(b.vertex(op.ID), s("drop"))))
	case graft.DropVertexProps:
		return append(t, s("sideEffect", append(b.vertex(op.ID), s("properties", anys(op.Keys)...), s("drop"))))
	case graft.UpsertEdge:
		t = b.upsertEdge(t, op, write)
		return b.props(t, op.Props, false)
	case graft.DeleteEdge:
		t = b.sameEdge(t, op, write)
		return append(t, s("sideEffect", append(b.edge(op), s("drop"))))
	case graft.DropEdgeProps:
		t = b.sameEdge(t, op, write)
		return append(t, s("sideEffect", append(b.edge(op), s("properties", anys(op.Keys)...), s("drop"))))
	case graft.ReplaceEdges:
		// Drop the label's edges to vertices not listed (explicit-id ones
		// too), then upsert an edge to each listed one: kept edges keep
		// their properties.
		targets := slices.Clone(op.Targets)
		slices.Sort(targets)
		targets = slices.Compact(targets)
		drop := append(b.vertex(op.From), s("outE", op.Label), s("where", traversal{s("inV"), s("not", b.hasIDs(targets))}), s("drop"))
		t = append(t, s("sideEffect", drop))
		for _, to := range targets {
			t = b.upsertEdge(t, &graft.Op{Kind: graft.UpsertEdge, Label: op.Label, From: op.From, To: to}, write)
		}
		return t
	}
	panic(fmt.Sprintf("gremlin: op kind %v", op.Kind))
}

// sameEdge fails the traversal when an op's explicit edge id names an edge
// with another label or other endpoints (upserts fail on the id by
// themselves). The message names the write: attribute reads it back.
func (b *builder) sameEdge(t traversal, op *graft.Op, write int) traversal {
	if op.ID == "" {
		return t
	}
	other := traversal{s("or",
		traversal{s("not", traversal{s("hasLabel", op.Label)})},
		traversal{s("outV"), s("not", b.hasID(op.From))},
		traversal{s("inV"), s("not", b.hasID(op.To))})}
	msg := fmt.Sprintf("%s%d: edge id %q names an edge with another label or other endpoints", markerWrite, write, op.ID)
	return append(t, s("sideEffect", append(append(b.edgeByID(op.ID), other...), s("fail", msg))))
}

// edgeByID is an anonymous traversal to the edge with Graft id id.
func (b *builder) edgeByID(id string) traversal {
	if b.dialect == JanusGraph {
		return traversal{s("E"), s("has", b.idProp, id)}
	}
	return traversal{s("E", id)}
}

// mustExist fails the traversal, naming the write, when vertex id does not
// exist: JanusGraph's addE would fail without naming it (to) or add nothing
// and end the traversal, skipping the rest of the batch (from).
func (b *builder) mustExist(t traversal, id string, write int) traversal {
	msg := fmt.Sprintf("%s%d: %s", markerMissing, write, id)
	return append(t, s("sideEffect", traversal{s("coalesce", b.vertex(id), traversal{s("fail", msg)})}))
}

// vertex is an anonymous traversal to the vertex with Graft id id.
func (b *builder) vertex(id string) traversal {
	if b.dialect == JanusGraph {
		return traversal{s("V"), s("has", b.idProp, id)}
	}
	return traversal{s("V", id)}
}

// hasID filters vertices whose Graft id is id.
func (b *builder) hasID(id string) traversal {
	if b.dialect == JanusGraph {
		return traversal{s("has", b.idProp, id)}
	}
	return traversal{s("hasId", id)}
}

// hasIDs filters vertices whose Graft id is one of ids.
func (b *builder) hasIDs(ids []string) traversal {
	if b.dialect == JanusGraph {
		return traversal{s("has", b.idProp, pred{"within", anys(ids)})}
	}
	return traversal{s("hasId", pred{"within", anys(ids)})}
}

// edge is an anonymous traversal to the op's edge: by explicit id, or by
// (label, from, to) for a natural edge.
func (b *builder) edge(op *graft.Op) traversal {
	if op.ID != "" {
		if b.dialect == JanusGraph {
			return traversal{s("E"), s("has", b.idProp, op.ID)}
		}
		return traversal{s("E", op.ID)}
	}
	// Not an edge Graft named: those have an id of their own.
	named := ExplicitIDProperty
	if b.dialect == JanusGraph {
		named = b.idProp
	}
	return append(b.vertex(op.From), s("outE", op.Label), s("hasNot", named), s("where", append(traversal{s("inV")}, b.hasIDs([]string{op.To})...)))
}

func (b *builder) upsertVertex(t traversal, id, label string, write int) traversal {
	if b.dialect == JanusGraph {
		find := traversal{s("V"), s("has", label, b.idProp, id)}
		// Not found with this label but found: another label.
		taken := traversal{s("V"), s("has", b.idProp, id), s("fail", fmt.Sprintf("%s%d: a vertex with this id has another label: %s", markerWrite, write, id))}
		create := traversal{s("addV", label), s("property", b.idProp, id)}
		return append(t, s("coalesce", find, taken, create))
	}
	// A vertex with this id and another label is not matched: creating it
	// fails on the id, and the engine dead-letters the write.
	return append(t, s("mergeV", mergeMap{{tID, id}, {tLabel, label}}))
}

func (b *builder) upsertEdge(t traversal, op *graft.Op, write int) traversal {
	if b.dialect == JanusGraph {
		t = b.mustExist(t, op.From, write)
		if op.To != op.From {
			t = b.mustExist(t, op.To, write)
		}
		t = b.sameEdge(t, op, write)
		to := traversal{s("V"), s("has", b.idProp, op.To)}
		create := append(b.vertex(op.From), s("addE", op.Label), s("to", to))
		find := b.edge(op)
		if op.ID != "" {
			find = traversal{s("E"), s("has", op.Label, b.idProp, op.ID)}
			create = append(create, s("property", b.idProp, op.ID))
		}
		return append(t, s("coalesce", find, create))
	}
	m := mergeMap{{tLabel, op.Label}, {dirFrom, op.From}, {dirTo, op.To}}
	if op.ID == "" {
		return append(t, s("mergeE", m))
	}
	// The server gives every edge an id: mark the ones Graft named, so a
	// reader tells them from natural edges.
	return append(t, s("mergeE", append(mergeMap{{tID, op.ID}}, m...)), s("property", ExplicitIDProperty, true))
}

// props sets properties, in key order (a batch always gives the same
// bytecode). Vertex properties are single-cardinality.
func (b *builder) props(t traversal, p graft.Props, vertex bool) traversal {
	for _, k := range p.Keys() {
		if vertex {
			t = append(t, s("property", cardOne, k, p[k].Any()))
		} else {
			t = append(t, s("property", k, p[k].Any()))
		}
	}
	return t
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
