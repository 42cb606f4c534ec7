package engine

import "github.com/graftdb/graft"

// planner turns the writes of a batch into what the sink must apply: ops
// whose effect the graph is known to hold are eliminated (known from the write
// cache) or coalesced (known from an earlier op of the same batch). It keeps an
// overlay of what the batch establishes, which the cache learns after commit.
//
// Only ops that are no-ops given the known state are removed, so every write
// keeps its meaning and its atomicity: the batch is one transaction.
type planner struct {
	cache *writeCache
	gen   uint64

	vertices      map[string]*vstate
	groups        map[string]*gstate // nil value: unknown
	deletedVertex bool               // cached groups are unreliable for the rest of the batch

	eliminated, coalesced int
	hits, misses          int // write-cache lookups

	// used is the version of each cache entry the plan read (shared cache:
	// the batch's facts build on it, so they may be published only if no
	// other batch began writing the element since; Begin checks).
	used map[string]uint64
}

// vstate is what the batch knows of a vertex.
type vstate struct {
	absent bool
	label  string // "" when unknown
	props  graft.Props
}

func (v *vstate) known() bool { return !v.absent && v.label != "" }

type gstate struct {
	exact   bool
	targets map[string]graft.Props
}

func newPlanner(c *writeCache) *planner {
	return &planner{cache: c, gen: c.generation(), vertices: map[string]*vstate{}, groups: map[string]*gstate{}}
}

// plan returns the writes to send, or nil for a write whose every op was
// eliminated. The input writes are not modified.
func (p *planner) plan(w *graft.Write) *graft.Write {
	if w.Version != 0 {
		p.opaque(w)
		return w
	}
	var kept []graft.Op
	dropped := false
	for i := range w.Ops {
		op := &w.Ops[i]
		fromCache, redundant := p.redundant(op)
		p.effect(op)
		if redundant {
			if fromCache {
				p.eliminated++
			} else {
				p.coalesced++
			}
			if !dropped {
				kept = append(make([]graft.Op, 0, len(w.Ops)), w.Ops[:i]...)
				dropped = true
			}
			continue
		}
		if dropped {
			kept = append(kept, *op)
		}
	}
	if !dropped {
		return w
	}
	if len(kept) == 0 {
		return nil
	}
	c := *w
	c.Ops = kept
	return &c
}

// opaque plans a versioned write: the sink may skip any of its ops (an
// older version than what the graph holds), so nothing it does is known
// afterwards, and none of its ops is a no-op on what is known before (an
// op eliminated would not leave its version): every element it touches
// becomes unknown, and the cache forgets them once the batch commits.
func (p *planner) opaque(w *graft.Write) {
	for i := range w.Ops {
		op := &w.Ops[i]
		switch op.Kind {
		case graft.UpsertVertex, graft.DropVertexProps:
			p.vertices[op.ID] = &vstate{}
		case graft.DeleteVertex:
			p.vertices[op.ID] = &vstate{}
			p.deletedVertex = true
			clear(p.groups) // they may hold edges into the vertex
		default:
			p.groups[groupKey(op.From, op.Label)] = nil
		}
	}
}

// vertex returns what is known of a vertex, and whether it came from the cache.
func (p *planner) vertex(id string) (v vstate, fromCache, ok bool) {
	if s, ok := p.vertices[id]; ok {
		return *s, false, true
	}
	if f, ok := p.cache.vertex(id); ok {
		p.hits++
		p.read(vertexKey(id), f.version)
		return vstate{label: f.label, props: f.props}, true, true
	}
	if p.cache != nil {
		p.misses++
	}
	return vstate{}, false, false
}

func (p *planner) group(from, label string) (g *gstate, fromCache bool) {
	k := groupKey(from, label)
	if s, ok := p.groups[k]; ok {
		return s, false
	}
	if p.deletedVertex {
		return nil, false
	}
	if f, ok := p.cache.group(k, p.gen); ok {
		p.hits++
		p.read(k, f.version)
		return &gstate{exact: f.exact, targets: f.targets}, true
	}
	if p.cache != nil {
		p.misses++
	}
	return nil, false
}

func (p *planner) read(k string, version uint64) {
	if p.used == nil {
		p.used = map[string]uint64{}
	}
	p.used[k] = version
}

// redundant reports whether op is a no-op given what is known.
func (p *planner) redundant(op *graft.Op) (fromCache, redundant bool) {
	switch op.Kind {
	case graft.UpsertVertex:
		v, fc, ok := p.vertex(op.ID)
		return fc, ok && v.known() && v.label == op.Label && subset(op.Props, v.props)
	case graft.DeleteVertex:
		v, fc, ok := p.vertex(op.ID)
		return fc, ok && v.absent
	case graft.UpsertEdge:
		if op.ID != "" {
			return false, false
		}
		g, fc := p.group(op.From, op.Label)
		if g == nil {
			return false, false
		}
		props, ok := g.targets[op.To]
		return fc, ok && subset(op.Props, props)
	case graft.DeleteEdge:
		if op.ID != "" {
			return false, false
		}
		g, fc := p.group(op.From, op.Label)
		if g == nil || !g.exact {
			return false, false
		}
		_, ok := g.targets[op.To]
		return fc, !ok
	case graft.ReplaceEdges:
		g, fc := p.group(op.From, op.Label)
		if g == nil || !g.exact || len(g.targets) != len(op.Targets) {
			return false, false
		}
		for _, t := range op.Targets {
			if _, ok := g.targets[t]; !ok {
				return false, false
			}
		}
		return fc, true
	}
	return false, false
}

// effect records what op establishes once the batch commits.
func (p *planner) effect(op *graft.Op) {
	switch op.Kind {
	case graft.UpsertVertex:
		v, _, ok := p.vertex(op.ID)
		if ok && v.known() && v.label != op.Label {
			p.vertices[op.ID] = &vstate{} // the op fails; the batch will not commit
			return
		}
		if !ok || !v.known() {
			v = vstate{}
		}
		p.vertices[op.ID] = &vstate{label: op.Label, props: merge(v.props, op.Props)}
	case graft.DeleteVertex:
		p.vertices[op.ID] = &vstate{absent: true}
		p.deletedVertex = true
		clear(p.groups) // they may hold edges into the vertex
	case graft.DropVertexProps:
		v, _, ok := p.vertex(op.ID)
		if !ok || !v.known() {
			p.vertices[op.ID] = &vstate{}
			return
		}
		p.vertices[op.ID] = &vstate{label: v.label, props: without(v.props, op.Keys)}
	case graft.UpsertEdge, graft.DeleteEdge, graft.DropEdgeProps:
		k := groupKey(op.From, op.Label)
		if op.ID != "" {
			p.groups[k] = nil // explicit edges are not tracked: the group is unknown
			return
		}
		g, _ := p.group(op.From, op.Label)
		ng := &gstate{targets: map[string]graft.Props{}}
		if g != nil {
			ng.exact = g.exact
			for t, props := range g.targets {
				ng.targets[t] = props
			}
		}
		switch op.Kind {
		case graft.UpsertEdge:
			ng.targets[op.To] = merge(ng.targets[op.To], op.Props)
		case graft.DeleteEdge:
			delete(ng.targets, op.To)
		case graft.DropEdgeProps:
			if props, ok := ng.targets[op.To]; ok {
				ng.targets[op.To] = without(props, op.Keys)
			}
		}
		p.groups[k] = ng
	case graft.ReplaceEdges:
		g, _ := p.group(op.From, op.Label)
		ng := &gstate{exact: true, targets: make(map[string]graft.Props, len(op.Targets))}
		for _, t := range op.Targets {
			var props graft.Props
			if g != nil {
				props = g.targets[t]
			}
			ng.targets[t] = props
		}
		p.groups[groupKey(op.From, op.Label)] = ng
	}
}

func subset(sub, of graft.Props) bool {
	for k, v := range sub {
		if w, ok := of[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// merge returns a new map: base with add on top.
func merge(base, add graft.Props) graft.Props {
	if len(add) == 0 {
		return base
	}
	if len(base) == 0 {
		return add // props maps are never modified once decoded
	}
	m := make(graft.Props, len(base)+len(add))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range add {
		m[k] = v
	}
	return m
}

func without(base graft.Props, keys []string) graft.Props {
	m := make(graft.Props, len(base))
	for k, v := range base {
		m[k] = v
	}
	for _, k := range keys {
		delete(m, k)
	}
	return m
}
