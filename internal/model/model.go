// Package model is the independent model of Graft's ops that tests and
// graft bench check graphs against. It is written apart from package
// semantics (which the PostgreSQL and SPARQL sinks use to compute their
// writes) and shares no code with it or with any sink, so that a bug in the
// op semantics cannot hide by being on both sides of a comparison. It
// favours plainness over speed.
package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/graftdb/graft"
)

// Graph is the model's graph. The zero value is not usable; call New.
type Graph struct {
	mu       sync.Mutex
	vertices map[string]vertex
	edges    map[edgeID]edge
	touching map[string]map[edgeID]bool // vertex id → the edges from or to it
	journal  []change                   // undo log of the write being applied
}

type vertex struct {
	label string
	props map[string]graft.Value
}

// edgeID names an edge: by its explicit id alone, or naturally by label,
// from and to (explicit is then "").
type edgeID struct {
	explicit        string
	label, from, to string
}

type edge struct {
	id              edgeID
	label, from, to string
	props           map[string]graft.Value
}

// change is what one mutation replaced, to undo a failed write.
type change struct {
	isVertex bool
	vid      string
	eid      edgeID
	hadV     bool
	oldV     vertex
	hadE     bool
	oldE     edge
}

// New returns an empty model.
func New() *Graph {
	return &Graph{vertices: map[string]vertex{}, edges: map[edgeID]edge{}, touching: map[string]map[edgeID]bool{}}
}

// ApplyWrite applies a write: every op in order, or none of them.
func (g *Graph) ApplyWrite(w *graft.Write) error {
	return g.ApplyBatch([]*graft.Write{w})
}

// ApplyBatch applies the writes in order: all of them, or none.
func (g *Graph) ApplyBatch(ws []*graft.Write) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.journal = g.journal[:0]
	for _, w := range ws {
		if err := g.write(w); err != nil {
			g.undo()
			return err
		}
	}
	return nil
}

func (g *Graph) write(w *graft.Write) error {
	for i := range w.Ops {
		if err := g.op(&w.Ops[i]); err != nil {
			return err
		}
	}
	return nil
}

// undo reverts the journal, newest first.
func (g *Graph) undo() {
	for j := len(g.journal) - 1; j >= 0; j-- {
		c := g.journal[j]
		switch {
		case c.isVertex && c.hadV:
			g.vertices[c.vid] = c.oldV
		case c.isVertex:
			delete(g.vertices, c.vid)
		case c.hadE:
			g.setEdge(c.eid, &c.oldE)
		default:
			g.setEdge(c.eid, nil)
		}
	}
	g.journal = g.journal[:0]
}

func (g *Graph) putVertex(id string, v *vertex) {
	old, had := g.vertices[id]
	g.journal = append(g.journal, change{isVertex: true, vid: id, hadV: had, oldV: old})
	if v == nil {
		delete(g.vertices, id)
	} else {
		g.vertices[id] = *v
	}
}

func (g *Graph) putEdge(id edgeID, e *edge) {
	old, had := g.edges[id]
	g.journal = append(g.journal, change{eid: id, hadE: had, oldE: old})
	g.setEdge(id, e)
}

// setEdge sets or (nil) deletes an edge and keeps touching up to date.
func (g *Graph) setEdge(id edgeID, e *edge) {
	if old, ok := g.edges[id]; ok {
		delete(g.touching[old.from], id)
		delete(g.touching[old.to], id)
		delete(g.edges, id)
	}
	if e == nil {
		return
	}
	g.edges[id] = *e
	for _, v := range []string{e.from, e.to} {
		if g.touching[v] == nil {
			g.touching[v] = map[edgeID]bool{}
		}
		g.touching[v][id] = true
	}
}

// edgesOf returns the ids of the edges from or to a vertex.
func (g *Graph) edgesOf(v string) []edgeID {
	out := make([]edgeID, 0, len(g.touching[v]))
	for id := range g.touching[v] {
		out = append(out, id)
	}
	return out
}

func withProps(old map[string]graft.Value, set graft.Props, drop []string) map[string]graft.Value {
	out := map[string]graft.Value{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range set {
		out[k] = v
	}
	for _, k := range drop {
		delete(out, k)
	}
	return out
}

func (g *Graph) mustExist(label, from, to string) error {
	if _, ok := g.vertices[from]; !ok {
		return graft.Errorf(graft.MissingEndpoint, -1, "model: edge %s %q→%q: no vertex %q", label, from, to, from)
	}
	if _, ok := g.vertices[to]; !ok {
		return graft.Errorf(graft.MissingEndpoint, -1, "model: edge %s %q→%q: no vertex %q", label, from, to, to)
	}
	return nil
}

// find returns the edge an edge op names, if any; an explicit id that names
// an edge of another label or other endpoints is an error.
func (g *Graph) find(op *graft.Op) (edgeID, *edge, error) {
	id := edgeID{label: op.Label, from: op.From, to: op.To}
	if op.ID != "" {
		id = edgeID{explicit: op.ID}
	}
	e, ok := g.edges[id]
	if !ok {
		return id, nil, nil
	}
	if op.ID != "" && (e.label != op.Label || e.from != op.From || e.to != op.To) {
		return id, nil, graft.Errorf(graft.Permanent, -1, "model: edge id %q is %s %q→%q", op.ID, e.label, e.from, e.to)
	}
	return id, &e, nil
}

func (g *Graph) op(op *graft.Op) error {
	switch op.Kind {
	case graft.UpsertVertex:
		old, ok := g.vertices[op.ID]
		if ok && old.label != op.Label {
			return graft.Errorf(graft.Permanent, -1, "model: vertex %q is a %q, not a %q", op.ID, old.label, op.Label)
		}
		g.putVertex(op.ID, &vertex{label: op.Label, props: withProps(old.props, op.Props, nil)})
	case graft.DropVertexProps:
		if old, ok := g.vertices[op.ID]; ok {
			g.putVertex(op.ID, &vertex{label: old.label, props: withProps(old.props, nil, op.Keys)})
		}
	case graft.DeleteVertex:
		if _, ok := g.vertices[op.ID]; !ok {
			return nil
		}
		g.putVertex(op.ID, nil)
		for _, id := range g.edgesOf(op.ID) {
			g.putEdge(id, nil)
		}
	case graft.UpsertEdge:
		if err := g.mustExist(op.Label, op.From, op.To); err != nil {
			return err
		}
		id, old, err := g.find(op)
		if err != nil {
			return err
		}
		var props map[string]graft.Value
		if old != nil {
			props = old.props
		}
		g.putEdge(id, &edge{id: id, label: op.Label, from: op.From, to: op.To, props: withProps(props, op.Props, nil)})
	case graft.DeleteEdge, graft.DropEdgeProps:
		id, old, err := g.find(op)
		if err != nil || old == nil {
			return err
		}
		if op.Kind == graft.DeleteEdge {
			g.putEdge(id, nil)
		} else {
			g.putEdge(id, &edge{id: id, label: old.label, from: old.from, to: old.to, props: withProps(old.props, nil, op.Keys)})
		}
	case graft.ReplaceEdges:
		for _, t := range op.Targets {
			if err := g.mustExist(op.Label, op.From, t); err != nil {
				return err
			}
		}
		// Every label edge out of from, natural or explicit, whose target
		// is not listed goes; a listed target with no edge gets a natural
		// one; an edge to a listed target stays as it is.
		kept := map[string]bool{}
		for _, id := range g.edgesOf(op.From) {
			e := g.edges[id]
			if e.from != op.From || e.label != op.Label {
				continue
			}
			if slices.Contains(op.Targets, e.to) {
				kept[e.to] = true
			} else {
				g.putEdge(id, nil)
			}
		}
		for _, t := range op.Targets {
			if !kept[t] {
				kept[t] = true
				id := edgeID{label: op.Label, from: op.From, to: t}
				g.putEdge(id, &edge{id: id, label: op.Label, from: op.From, to: t})
			}
		}
	default:
		return graft.Errorf(graft.Permanent, -1, "model: op kind %d", op.Kind)
	}
	return nil
}

// Snapshot returns every vertex (by id) and edge (by from, label, to, id).
func (g *Graph) Snapshot() ([]graft.Vertex, []graft.Edge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	vs := make([]graft.Vertex, 0, len(g.vertices))
	for id, v := range g.vertices {
		vs = append(vs, graft.Vertex{ID: id, Label: v.label, Props: props(v.props)})
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
	es := make([]graft.Edge, 0, len(g.edges))
	for id, e := range g.edges {
		es = append(es, graft.Edge{ID: id.explicit, Label: e.label, From: e.from, To: e.to, Props: props(e.props)})
	}
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		return strings.Join([]string{a.From, a.Label, a.To, a.ID}, "\x00") < strings.Join([]string{b.From, b.Label, b.To, b.ID}, "\x00")
	})
	return vs, es
}

func props(m map[string]graft.Value) graft.Props {
	if len(m) == 0 {
		return nil
	}
	p := make(graft.Props, len(m))
	for k, v := range m {
		p[k] = v
	}
	return p
}

// Diff describes how two graphs differ, at most 20 lines, or returns ""
// when they hold the same vertices and edges with the same labels and
// properties.
func Diff(wantV []graft.Vertex, wantE []graft.Edge, gotV []graft.Vertex, gotE []graft.Edge) string {
	var out []string
	wv, gv := map[string]graft.Vertex{}, map[string]graft.Vertex{}
	for _, v := range wantV {
		wv[v.ID] = v
	}
	for _, v := range gotV {
		gv[v.ID] = v
	}
	for id, w := range wv {
		g, ok := gv[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing vertex %q", id))
		case g.Label != w.Label || !g.Props.Equal(w.Props):
			out = append(out, fmt.Sprintf("vertex %q: got %s %v, want %s %v", id, g.Label, g.Props, w.Label, w.Props))
		}
	}
	for id := range gv {
		if _, ok := wv[id]; !ok {
			out = append(out, fmt.Sprintf("unexpected vertex %q", id))
		}
	}
	name := func(e graft.Edge) edgeID {
		if e.ID != "" {
			return edgeID{explicit: e.ID}
		}
		return edgeID{label: e.Label, from: e.From, to: e.To}
	}
	we, ge := map[edgeID]graft.Edge{}, map[edgeID]graft.Edge{}
	for _, e := range wantE {
		we[name(e)] = e
	}
	for _, e := range gotE {
		ge[name(e)] = e
	}
	for k, w := range we {
		g, ok := ge[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("missing edge %s %q→%q (id %q)", w.Label, w.From, w.To, w.ID))
		case g.From != w.From || g.To != w.To || g.Label != w.Label || !g.Props.Equal(w.Props):
			out = append(out, fmt.Sprintf("edge %s %q→%q: got %s %q→%q %v, want props %v", w.Label, w.From, w.To, g.Label, g.From, g.To, g.Props, w.Props))
		}
	}
	for k, g := range ge {
		if _, ok := we[k]; !ok {
			out = append(out, fmt.Sprintf("unexpected edge %s %q→%q (id %q)", g.Label, g.From, g.To, g.ID))
		}
	}
	sort.Strings(out)
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("... and %d more differences", len(out)-20))
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}
