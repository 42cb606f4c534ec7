// Package semantics is what Graft's ops mean (docs/wire-format.md), as an
// in-memory property graph that applies writes atomically. It is production
// code: the diff-based sinks (PostgreSQL, SPARQL) load the part of the graph
// a batch touches into a Graph, apply the batch here with exact per-write
// errors, and write the difference. Tests use it as a fast in-memory store
// (internal/memgraph), never as the model a sink is checked against: that
// is internal/model, which shares no code with this package.
package semantics

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/graftdb/graft"
)

// Graph is an in-memory graph. The zero value is not usable; call New.
type Graph struct {
	mu       sync.Mutex
	vertices map[string]*graft.Vertex
	edges    map[string]*graft.Edge         // by edgeKey
	adj      map[string]map[string]struct{} // vertex id → keys of its edges, both directions
	undo     []undoEntry                    // during a transaction
	inTx     bool
	fences   map[string]uint64 // highest fencing token committed per key
	// What versioned writes left (versions.go): per element, and per
	// (from, label) group of edges; tombstones outlive their elements.
	metas  map[string]*meta
	groups map[string]*group
}

type undoEntry struct {
	kind uint8 // undoVertex, undoEdge, undoMeta, undoGroup
	key  string
	vold *graft.Vertex
	eold *graft.Edge
	mold *meta
	gold *group
}

const (
	undoEdge uint8 = iota
	undoVertex
	undoMeta
	undoGroup
)

// New returns an empty graph.
func New() *Graph {
	return &Graph{vertices: map[string]*graft.Vertex{}, edges: map[string]*graft.Edge{}, adj: map[string]map[string]struct{}{},
		metas: map[string]*meta{}, groups: map[string]*group{}}
}

func edgeKey(id, label, from, to string) string {
	if id != "" {
		return "i\x00" + id
	}
	return "n\x00" + label + "\x00" + from + "\x00" + to
}

// Put adds or replaces a vertex, outside any transaction (for loading).
func (g *Graph) Put(v graft.Vertex) { g.vertices[v.ID] = &v }

// PutEdge adds or replaces an edge, outside any transaction (for loading).
func (g *Graph) PutEdge(e graft.Edge) {
	k := edgeKey(e.ID, e.Label, e.From, e.To)
	g.unindex(k)
	g.edges[k] = &e
	g.index(k, &e)
}

// EdgeKey identifies an edge: by its id, or by (label, from, to).
func EdgeKey(e *graft.Edge) string { return edgeKey(e.ID, e.Label, e.From, e.To) }

// ApplyWrite applies one write atomically.
func (g *Graph) ApplyWrite(w *graft.Write) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.begin()
	if err := g.apply(w); err != nil {
		g.rollback()
		return err
	}
	g.commit()
	return nil
}

// ApplyBatch applies writes in one transaction: all or none. The error is a
// *graft.Error attributed to the failing write.
func (g *Graph) ApplyBatch(ws []*graft.Write) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.applyBatch(ws)
}

func (g *Graph) applyBatch(ws []*graft.Write) error {
	g.begin()
	for i, w := range ws {
		if err := g.apply(w); err != nil {
			g.rollback()
			e := err.(*graft.Error)
			e.Index = i
			return e
		}
	}
	g.commit()
	return nil
}

func (g *Graph) begin()  { g.inTx, g.undo = true, g.undo[:0] }
func (g *Graph) commit() { g.inTx, g.undo = false, g.undo[:0] }

func (g *Graph) rollback() {
	for i := len(g.undo) - 1; i >= 0; i-- {
		u := g.undo[i]
		switch {
		case u.kind == undoMeta && u.mold == nil:
			delete(g.metas, u.key)
		case u.kind == undoMeta:
			g.metas[u.key] = u.mold
		case u.kind == undoGroup && u.gold == nil:
			delete(g.groups, u.key)
		case u.kind == undoGroup:
			g.groups[u.key] = u.gold
		case u.kind == undoVertex && u.vold == nil:
			delete(g.vertices, u.key)
		case u.kind == undoVertex:
			g.vertices[u.key] = u.vold
		default:
			g.unindex(u.key)
			if u.eold == nil {
				delete(g.edges, u.key)
			} else {
				g.edges[u.key] = u.eold
				g.index(u.key, u.eold)
			}
		}
	}
	g.commit()
}

func (g *Graph) saveVertex(id string) {
	g.undo = append(g.undo, undoEntry{kind: undoVertex, key: id, vold: g.vertices[id]})
}

func (g *Graph) saveEdge(k string) {
	g.undo = append(g.undo, undoEntry{key: k, eold: g.edges[k]})
}

func (g *Graph) setVertex(v *graft.Vertex) { g.saveVertex(v.ID); g.vertices[v.ID] = v }
func (g *Graph) delVertex(id string)       { g.saveVertex(id); delete(g.vertices, id) }
func (g *Graph) setEdge(k string, e *graft.Edge) {
	g.saveEdge(k)
	g.unindex(k)
	g.edges[k] = e
	g.index(k, e)
}

func (g *Graph) delEdge(k string) { g.saveEdge(k); g.unindex(k); delete(g.edges, k) }

func (g *Graph) index(k string, e *graft.Edge) {
	for _, v := range [2]string{e.From, e.To} {
		m := g.adj[v]
		if m == nil {
			m = map[string]struct{}{}
			g.adj[v] = m
		}
		m[k] = struct{}{}
	}
}

func (g *Graph) unindex(k string) {
	e := g.edges[k]
	if e == nil {
		return
	}
	for _, v := range [2]string{e.From, e.To} {
		if m := g.adj[v]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(g.adj, v)
			}
		}
	}
}

// edgesOf returns the keys of a vertex's edges (a copy: callers modify).
func (g *Graph) edgesOf(id string) []string {
	keys := make([]string, 0, len(g.adj[id]))
	for k := range g.adj[id] {
		keys = append(keys, k)
	}
	return keys
}

func merge(old, add graft.Props) graft.Props {
	p := old.Clone()
	if p == nil && len(add) > 0 {
		p = graft.Props{}
	}
	for k, v := range add {
		p[k] = v
	}
	return p
}

func drop(old graft.Props, keys []string) graft.Props {
	p := old.Clone()
	for _, k := range keys {
		delete(p, k)
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

func (g *Graph) apply(w *graft.Write) error {
	for i := range w.Ops {
		if w.Version != 0 {
			if err := g.applyVersioned(&w.Ops[i], w.Version); err != nil {
				return err
			}
			continue
		}
		if err := g.applyOp(&w.Ops[i]); err != nil {
			return err
		}
	}
	return nil
}

func (g *Graph) applyOp(op *graft.Op) error {
	switch op.Kind {
	case graft.UpsertVertex:
		v := g.vertices[op.ID]
		if v == nil {
			g.setVertex(&graft.Vertex{ID: op.ID, Label: op.Label, Props: op.Props.Clone()})
			return nil
		}
		if v.Label != op.Label {
			return graft.Errorf(graft.Permanent, -1, "vertex %q has label %q, not %q", op.ID, v.Label, op.Label)
		}
		g.setVertex(&graft.Vertex{ID: v.ID, Label: v.Label, Props: merge(v.Props, op.Props)})
	case graft.DeleteVertex:
		if g.vertices[op.ID] == nil {
			return nil
		}
		g.delVertex(op.ID)
		for _, k := range g.edgesOf(op.ID) {
			g.delEdge(k)
		}
	case graft.DropVertexProps:
		if v := g.vertices[op.ID]; v != nil {
			g.setVertex(&graft.Vertex{ID: v.ID, Label: v.Label, Props: drop(v.Props, op.Keys)})
		}
	case graft.UpsertEdge:
		if err := g.endpoints(op.Label, op.From, op.To); err != nil {
			return err
		}
		k := edgeKey(op.ID, op.Label, op.From, op.To)
		e, err := g.edge(k, op)
		if err != nil {
			return err
		}
		if e == nil {
			g.setEdge(k, &graft.Edge{ID: op.ID, Label: op.Label, From: op.From, To: op.To, Props: op.Props.Clone()})
			return nil
		}
		g.setEdge(k, &graft.Edge{ID: e.ID, Label: e.Label, From: e.From, To: e.To, Props: merge(e.Props, op.Props)})
	case graft.DeleteEdge, graft.DropEdgeProps:
		k := edgeKey(op.ID, op.Label, op.From, op.To)
		e, err := g.edge(k, op)
		if err != nil || e == nil {
			return err
		}
		if op.Kind == graft.DeleteEdge {
			g.delEdge(k)
		} else {
			g.setEdge(k, &graft.Edge{ID: e.ID, Label: e.Label, From: e.From, To: e.To, Props: drop(e.Props, op.Keys)})
		}
	case graft.ReplaceEdges:
		keep := make(map[string]bool, len(op.Targets))
		for _, t := range op.Targets {
			if err := g.endpoints(op.Label, op.From, t); err != nil {
				return err
			}
			keep[t] = true
		}
		have := map[string]bool{}
		for _, k := range g.edgesOf(op.From) {
			e := g.edges[k]
			if e.From != op.From || e.Label != op.Label {
				continue
			}
			if keep[e.To] {
				have[e.To] = true
			} else {
				g.delEdge(k)
			}
		}
		for _, t := range op.Targets {
			if !have[t] {
				g.setEdge(edgeKey("", op.Label, op.From, t), &graft.Edge{Label: op.Label, From: op.From, To: t})
			}
		}
	default:
		return graft.Errorf(graft.Permanent, -1, "unknown op kind %d", op.Kind)
	}
	return nil
}

// edge returns the edge an op identifies (nil when absent). An explicit id
// naming an edge with other endpoints or label is a permanent error.
func (g *Graph) edge(k string, op *graft.Op) (*graft.Edge, error) {
	e := g.edges[k]
	if e != nil && op.ID != "" && (e.Label != op.Label || e.From != op.From || e.To != op.To) {
		return nil, graft.Errorf(graft.Permanent, -1, "edge id %q is %s %q→%q, not %s %q→%q",
			op.ID, e.Label, e.From, e.To, op.Label, op.From, op.To)
	}
	return e, nil
}

func (g *Graph) endpoints(label, from, to string) error {
	for _, id := range []string{from, to} {
		if g.vertices[id] == nil {
			return graft.Errorf(graft.MissingEndpoint, -1, "edge %s %q→%q: vertex %q does not exist", label, from, to, id)
		}
	}
	return nil
}

// Vertex implements graft.Reader.
func (g *Graph) Vertex(_ context.Context, id string) (*graft.Vertex, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := g.vertices[id]
	if v == nil {
		return nil, graft.ErrNotFound
	}
	c := *v
	c.Props = v.Props.Clone()
	return &c, nil
}

// Edges implements graft.Reader.
func (g *Graph) Edges(_ context.Context, id string, dir graft.Direction, label string) ([]graft.Edge, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []graft.Edge
	for _, e := range g.edges {
		if label != "" && e.Label != label {
			continue
		}
		if (dir != graft.In && e.From == id) || (dir != graft.Out && e.To == id) {
			c := *e
			c.Props = e.Props.Clone()
			out = append(out, c)
		}
	}
	SortEdges(out)
	return out, nil
}

// Export implements graft.Reader, in sorted order.
func (g *Graph) Export(_ context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	vs, es := g.Snapshot()
	for i := range vs {
		if err := vf(&vs[i]); err != nil {
			return err
		}
	}
	for i := range es {
		if err := ef(&es[i]); err != nil {
			return err
		}
	}
	return nil
}

// Snapshot returns copies of every vertex and edge, sorted.
func (g *Graph) Snapshot() ([]graft.Vertex, []graft.Edge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	vs := make([]graft.Vertex, 0, len(g.vertices))
	for _, v := range g.vertices {
		c := *v
		c.Props = v.Props.Clone()
		vs = append(vs, c)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].ID < vs[j].ID })
	es := make([]graft.Edge, 0, len(g.edges))
	for _, e := range g.edges {
		c := *e
		c.Props = e.Props.Clone()
		es = append(es, c)
	}
	SortEdges(es)
	return vs, es
}

// SortEdges orders edges by (from, label, to, id).
func SortEdges(es []graft.Edge) {
	sort.Slice(es, func(i, j int) bool {
		a, b := &es[i], &es[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.ID < b.ID
	})
}

var _ graft.Reader = (*Graph)(nil)

// ApplyFenced applies the writes unless a key already committed a higher
// token; then it records the token for every key, in the same transaction.
func (g *Graph) ApplyFenced(ws []*graft.Write, keys []string, token uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fences == nil {
		g.fences = map[string]uint64{}
	}
	for _, k := range keys {
		if t := g.fences[k]; t > token {
			return graft.NewError(graft.Conflict, fmt.Errorf("key %q: token %d < %d: %w", k, token, t, graft.ErrFenced))
		}
	}
	if err := g.applyBatch(ws); err != nil {
		return err
	}
	for _, k := range keys {
		g.fences[k] = max(g.fences[k], token)
	}
	return nil
}
