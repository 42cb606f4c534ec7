package semantics

import (
	"encoding/json"
	"maps"
	"strings"

	"github.com/graftdb/graft"
)

// Version guards (docs/DESIGN.md, "Versions"). A write with a version
// applies as if every versioned write had been applied in version order,
// whatever order they arrive in: a replay that re-applies an old write
// after newer ones changes nothing the newer ones set.
//
//   - A property keeps the value of the highest version that set or
//     dropped it; an older op on it is skipped, not an error.
//   - Deleting an element leaves its tombstone: the element's floor, the
//     highest version that deleted it. Any op on it older than the floor is
//     skipped — it happened before the delete — and so is any op on an
//     edge older than the floor of one of its endpoints.
//   - A delete removes what is no newer than itself: an element a newer
//     write upserted stays, without the properties the delete is newer
//     than; an edge survives its endpoint's older delete the same way.
//   - replaceEdges is a delete of every edge of its group outside the
//     targets, each guarded as above, and an upsert of each target; the
//     group remembers, per target, the newest replace that left it out, so
//     that an older upsertEdge to it (or an older replace naming it) is
//     skipped, even when the edge did not exist yet when the replace came.
//   - Equal versions apply in the order they arrive (the ops of one write
//     share its version and apply in order).
//
// Writes without a version (0) apply unguarded and leave no versions.

// meta is what versioned writes left on one element (immutable once
// stored: changes store a copy).
type meta struct {
	up    int64            // highest version that upserted the element
	floor int64            // highest version that deleted it (0: none)
	props map[string]int64 // per property: the version that last set or dropped it
}

// group is what the replaceEdges of a (from, label) group left: for any
// target, the newest replace that left it out (its edge was deleted then).
// A target never named by a replace was left out by all of them.
type group struct {
	newest int64            // the newest replace
	named  map[string]int64 // targets some replace named → the newest replace without them (0: none)
}

// excluded returns the version of the newest replace that left t out.
func (gr *group) excluded(t string) int64 {
	if gr == nil {
		return 0
	}
	if x, ok := gr.named[t]; ok {
		return x
	}
	return gr.newest
}

// with returns the group after a replace at v with the targets keep,
// whatever the order replaces arrive in.
func (gr *group) with(v int64, keep map[string]bool) *group {
	n := &group{named: map[string]int64{}}
	if gr != nil {
		n.newest = gr.newest
		maps.Copy(n.named, gr.named)
	}
	for t, x := range n.named {
		if !keep[t] {
			n.named[t] = max(x, v)
		}
	}
	for t := range keep {
		if _, ok := n.named[t]; !ok {
			n.named[t] = n.newest // every replace so far left it out
		}
	}
	n.newest = max(n.newest, v)
	return n
}

func vertexMeta(id string) string       { return "v\x00" + id }
func groupOf(from, label string) string { return from + "\x00" + label }

func (g *Graph) meta(k string) meta {
	if m := g.metas[k]; m != nil {
		return *m
	}
	return meta{}
}

func (g *Graph) setMeta(k string, m meta) {
	g.undo = append(g.undo, undoEntry{kind: undoMeta, key: k, mold: g.metas[k]})
	g.metas[k] = &m
}

func (g *Graph) setGroup(k string, gr *group) {
	g.undo = append(g.undo, undoEntry{kind: undoGroup, key: k, gold: g.groups[k]})
	g.groups[k] = gr
}

// setProps returns base with the props of add that are not older than
// their last change, and m with their versions.
func setProps(base, add graft.Props, m *meta, v int64) graft.Props {
	p := base.Clone()
	m.props = maps.Clone(m.props)
	for k, val := range add {
		if m.props[k] > v {
			continue
		}
		if p == nil {
			p = graft.Props{}
		}
		p[k] = val
		if m.props == nil {
			m.props = map[string]int64{}
		}
		m.props[k] = v
	}
	return p
}

// dropProps returns base without keys (those not newer than v), and m
// with the drops' versions: tombstones, even for properties not there.
func dropProps(base graft.Props, keys []string, m *meta, v int64) graft.Props {
	p := base.Clone()
	m.props = maps.Clone(m.props)
	for _, k := range keys {
		if m.props[k] > v {
			continue
		}
		delete(p, k)
		if m.props == nil {
			m.props = map[string]int64{}
		}
		m.props[k] = v
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

// olderProps returns base without the properties no newer than v.
func olderProps(base graft.Props, m meta, v int64) graft.Props {
	p := graft.Props{}
	for k, val := range base {
		if m.props[k] > v {
			p[k] = val
		}
	}
	if len(p) == 0 {
		return nil
	}
	return p
}

func vertexProps(v *graft.Vertex) graft.Props {
	if v == nil {
		return nil
	}
	return v.Props
}

func edgeProps(e *graft.Edge) graft.Props {
	if e == nil {
		return nil
	}
	return e.Props
}

// predates reports whether a versioned op on an edge happened before one
// of its endpoints was deleted for the last time.
func (g *Graph) predates(v int64, ids ...string) bool {
	for _, id := range ids {
		if v < g.meta(vertexMeta(id)).floor {
			return true
		}
	}
	return false
}

func (g *Graph) applyVersioned(op *graft.Op, v int64) error {
	switch op.Kind {
	case graft.UpsertVertex:
		k := vertexMeta(op.ID)
		m := g.meta(k)
		if v < m.floor {
			return nil
		}
		old := g.vertices[op.ID]
		if old != nil && old.Label != op.Label {
			return graft.Errorf(graft.Permanent, -1, "vertex %q has label %q, not %q", op.ID, old.Label, op.Label)
		}
		props := setProps(vertexProps(old), op.Props, &m, v)
		m.up = max(m.up, v)
		g.setMeta(k, m)
		g.setVertex(&graft.Vertex{ID: op.ID, Label: op.Label, Props: props})
	case graft.DeleteVertex:
		k := vertexMeta(op.ID)
		m := g.meta(k)
		if v < m.floor {
			return nil
		}
		m.floor = v
		g.setMeta(k, m)
		old := g.vertices[op.ID]
		if old == nil {
			return nil
		}
		if m.up > v {
			// A newer write upserted it: it stays, without what the
			// delete is newer than, and so do its newer edges.
			g.setVertex(&graft.Vertex{ID: old.ID, Label: old.Label, Props: olderProps(old.Props, m, v)})
			for _, ek := range g.edgesOf(op.ID) {
				g.deleteEdgeAt(ek, v)
			}
			return nil
		}
		g.delVertex(op.ID)
		for _, ek := range g.edgesOf(op.ID) {
			g.delEdge(ek)
		}
	case graft.DropVertexProps:
		k := vertexMeta(op.ID)
		m := g.meta(k)
		if v < m.floor {
			return nil
		}
		old := g.vertices[op.ID]
		props := dropProps(vertexProps(old), op.Keys, &m, v)
		g.setMeta(k, m)
		if old != nil {
			g.setVertex(&graft.Vertex{ID: old.ID, Label: old.Label, Props: props})
		}
	case graft.UpsertEdge:
		if g.predates(v, op.From, op.To) {
			return nil
		}
		if err := g.endpoints(op.Label, op.From, op.To); err != nil {
			return err
		}
		k := edgeKey(op.ID, op.Label, op.From, op.To)
		m := g.meta(k)
		if v < m.floor {
			return nil
		}
		if v < g.groups[groupOf(op.From, op.Label)].excluded(op.To) {
			return nil // a newer replaceEdges left this target out
		}
		old, err := g.edge(k, op)
		if err != nil {
			return err
		}
		props := setProps(edgeProps(old), op.Props, &m, v)
		m.up = max(m.up, v)
		g.setMeta(k, m)
		g.setEdge(k, &graft.Edge{ID: op.ID, Label: op.Label, From: op.From, To: op.To, Props: props})
	case graft.DeleteEdge, graft.DropEdgeProps:
		k := edgeKey(op.ID, op.Label, op.From, op.To)
		old, err := g.edge(k, op)
		if err != nil {
			return err
		}
		if op.Kind == graft.DeleteEdge {
			if v >= g.meta(k).floor {
				g.deleteEdgeAt(k, v)
			}
			return nil
		}
		m := g.meta(k)
		if v < m.floor {
			return nil
		}
		props := dropProps(edgeProps(old), op.Keys, &m, v)
		g.setMeta(k, m)
		if old != nil {
			g.setEdge(k, &graft.Edge{ID: old.ID, Label: old.Label, From: old.From, To: old.To, Props: props})
		}
	case graft.ReplaceEdges:
		gk := groupOf(op.From, op.Label)
		if g.predates(v, op.From) {
			return nil
		}
		keep := make(map[string]bool, len(op.Targets))
		for _, t := range op.Targets {
			keep[t] = true
			if g.predates(v, t) {
				continue // deleted after this replace: its edge is gone
			}
			if err := g.endpoints(op.Label, op.From, t); err != nil {
				return err
			}
		}
		for _, ek := range g.edgesOf(op.From) {
			e := g.edges[ek]
			if e.From == op.From && e.Label == op.Label && !keep[e.To] {
				g.deleteEdgeAt(ek, v)
			}
		}
		gr := g.groups[gk].with(v, keep)
		for _, t := range op.Targets {
			if g.predates(v, t) || v < gr.excluded(t) {
				continue // a newer replace left it out, or deleted its vertex
			}
			k := edgeKey("", op.Label, op.From, t)
			m := g.meta(k)
			if v < m.floor {
				continue
			}
			m.up = max(m.up, v)
			g.setMeta(k, m)
			if g.edges[k] == nil {
				g.setEdge(k, &graft.Edge{Label: op.Label, From: op.From, To: t})
			}
		}
		g.setGroup(gk, gr)
	default:
		return graft.Errorf(graft.Permanent, -1, "unknown op kind %d", op.Kind)
	}
	return nil
}

// deleteEdgeAt deletes the edge k at version v: it stays, without the
// properties v is newer than, when a newer write upserted it; its floor
// becomes v either way.
func (g *Graph) deleteEdgeAt(k string, v int64) {
	m := g.meta(k)
	if v < m.floor {
		return
	}
	m.floor = v
	g.setMeta(k, m)
	e := g.edges[k]
	if e == nil {
		return
	}
	if m.up > v {
		g.setEdge(k, &graft.Edge{ID: e.ID, Label: e.Label, From: e.From, To: e.To, Props: olderProps(e.Props, m, v)})
		return
	}
	g.delEdge(k)
}

// Versions is what versioned writes left on one element, for a sink that
// stores it (a row per element): Up, the highest version that upserted it;
// Floor, the highest that deleted it (its tombstone); Props, per property
// the version that last set or dropped it.
type Versions struct {
	Up, Floor int64
	Props     map[string]int64
}

// Group is what replaceEdges left on one (from, label) group: Newest, the
// newest replace; Named, per target a replace named, the newest replace
// that left it out (0: none). A target never named was left out by every
// replace.
type Group struct {
	Newest int64
	Named  map[string]int64
}

// putVersions loads an element's versions, outside any transaction.
func (g *Graph) putVersions(key string, v Versions) {
	g.metas[key] = &meta{up: v.Up, floor: v.Floor, props: v.Props}
}

// putGroup loads a group's replaces, outside any transaction.
func (g *Graph) putGroup(from, label string, gr Group) {
	g.groups[groupOf(from, label)] = &group{newest: gr.Newest, named: gr.Named}
}

// allVersions returns every element's versions, by key (a copy).
func (g *Graph) allVersions() map[string]Versions {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]Versions, len(g.metas))
	for k, m := range g.metas {
		out[k] = Versions{Up: m.up, Floor: m.floor, Props: maps.Clone(m.props)}
	}
	return out
}

// allGroups returns every group's replaces, by {from, label} (a copy).
func (g *Graph) allGroups() map[[2]string]Group {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[[2]string]Group, len(g.groups))
	for k, gr := range g.groups {
		from, label, _ := strings.Cut(k, "\x00")
		out[[2]string{from, label}] = Group{Newest: gr.newest, Named: maps.Clone(gr.named)}
	}
	return out
}

// PropsJSON is Props as a JSON object, for a sink that stores it as text.
func (v Versions) PropsJSON() string { return versionMap(v.Props) }

// NamedJSON is Named as a JSON object, for a sink that stores it as text.
func (gr Group) NamedJSON() string { return versionMap(gr.Named) }

func versionMap(m map[string]int64) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings to integers always encodes
	return string(b)
}
