package engine

import (
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/graftdb/graft"
)

// writeCache remembers what the graph is known to hold, so that ops whose
// effect is already there can be eliminated (invariant 6). It is filled only
// from committed batches and forgets whatever a failed batch touched.
//
// Two kinds of entries:
//   - a vertex: it exists, with this label and at least these property values;
//   - an edge group (from, label): natural edges from→to that exist with at
//     least these property values; exact when the group holds every target,
//     which is what replaceEdges establishes.
//
// deleteVertex removes edges into the vertex from groups nobody can list, so
// it bumps gen, which invalidates every group at once.
type writeCache struct {
	c   *lru.Cache[string, any]
	gen atomic.Uint64
}

type vertexFacts struct {
	label string
	props graft.Props // never modified once cached
}

type groupFacts struct {
	gen     uint64
	exact   bool
	targets map[string]graft.Props // never modified once cached
}

func newWriteCache(size int) *writeCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[string, any](size)
	if err != nil {
		panic(err) // only for size <= 0
	}
	return &writeCache{c: c}
}

func vertexKey(id string) string         { return "v\x00" + id }
func groupKey(from, label string) string { return "g\x00" + from + "\x00" + label }

func (wc *writeCache) vertex(id string) (*vertexFacts, bool) {
	if wc == nil {
		return nil, false
	}
	v, ok := wc.c.Get(vertexKey(id))
	if !ok {
		return nil, false
	}
	return v.(*vertexFacts), true
}

func (wc *writeCache) group(key string, gen uint64) (*groupFacts, bool) {
	if wc == nil {
		return nil, false
	}
	v, ok := wc.c.Get(key)
	if !ok {
		return nil, false
	}
	g := v.(*groupFacts)
	if g.gen != gen {
		wc.c.Remove(key)
		return nil, false
	}
	return g, true
}

func (wc *writeCache) generation() uint64 {
	if wc == nil {
		return 0
	}
	return wc.gen.Load()
}

// learn records what a committed batch established (its planner's overlay).
func (wc *writeCache) learn(p *planner) {
	if wc == nil {
		return
	}
	if p.deletedVertex {
		wc.gen.Add(1)
	}
	for id, v := range p.vertices {
		if v.known() {
			wc.c.Add(vertexKey(id), &vertexFacts{label: v.label, props: v.props})
		} else {
			wc.c.Remove(vertexKey(id))
		}
	}
	for k, g := range p.groups {
		if g == nil {
			wc.c.Remove(k)
			continue
		}
		wc.c.Add(k, &groupFacts{gen: p.gen, exact: g.exact, targets: g.targets})
	}
}

// forget drops every entry a batch touched: after a failure the graph may
// hold either state.
func (wc *writeCache) forget(p *planner) {
	if wc == nil {
		return
	}
	if p.deletedVertex {
		wc.gen.Add(1)
	}
	for id := range p.vertices {
		wc.c.Remove(vertexKey(id))
	}
	for k := range p.groups {
		wc.c.Remove(k)
	}
}

func (wc *writeCache) len() int {
	if wc == nil {
		return 0
	}
	return wc.c.Len()
}
