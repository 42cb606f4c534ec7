package engine

import (
	"context"
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
//
// With a shared cache (Redis), every entry carries the shared version it was
// loaded or published at; refresh brings a batch's entries up to date before
// it is planned.
type writeCache struct {
	c      *lru.Cache[string, any]
	gen    atomic.Uint64
	shared *sharedState // nil: in-process only
}

type vertexFacts struct {
	version uint64
	label   string
	props   graft.Props // never modified once cached
}

type groupFacts struct {
	version uint64
	gen     uint64
	exact   bool
	targets map[string]graft.Props // never modified once cached
}

func versionOf(e any) uint64 {
	switch f := e.(type) {
	case *vertexFacts:
		return f.version
	case *groupFacts:
		return f.version
	}
	return 0
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

// exists reports whether a committed batch established the vertex and
// nothing since forgot it; it does not change what is evicted next.
func (wc *writeCache) exists(id string) bool {
	if wc == nil {
		return false
	}
	_, ok := wc.c.Peek(vertexKey(id))
	return ok
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

// purge forgets everything (the shared cache's epoch changed, or it failed).
func (wc *writeCache) purge() { wc.c.Purge() }

// refresh brings the entries of keys up to date with the shared cache and
// returns the edge-group generation to plan with; ok is false when the
// shared cache cannot be used (the batch is planned without any cache).
func (wc *writeCache) refresh(ctx context.Context, keys []string) (gen uint64, ok bool) {
	s := wc.shared
	if !s.usable(ctx, wc) {
		return 0, false
	}
	have := make([]uint64, len(keys))
	for i, k := range keys {
		if e, ok := wc.c.Peek(k); ok {
			have[i] = versionOf(e)
		}
	}
	l, err := s.c.Load(ctx, keys, have)
	if err != nil {
		s.failed(wc, err)
		return 0, false
	}
	if s.epoch.Swap(l.Epoch) != l.Epoch {
		wc.purge()
		clear(l.Same) // what was held belongs to another epoch
	}
	for i, k := range keys {
		if l.Same[i] && have[i] != 0 {
			continue
		}
		f := l.Facts[i]
		switch {
		case f == nil:
			wc.c.Remove(k)
		case graft.IsVertexCacheKey(k):
			wc.c.Add(k, &vertexFacts{version: f.Version, label: f.Label, props: f.Props})
		default:
			wc.c.Add(k, &groupFacts{version: f.Version, gen: f.Gen, exact: f.Exact, targets: f.Targets})
		}
	}
	return l.Gen, true
}

// learn records what a committed batch established (its planner's overlay).
// versions holds the shared versions of the keys the batch wrote.
func (wc *writeCache) learn(p *planner, versions map[string]uint64) {
	if wc == nil {
		return
	}
	if p.deletedVertex {
		wc.gen.Add(1)
	}
	version := func(k string) uint64 {
		if v, ok := versions[k]; ok {
			return v
		}
		if e, ok := wc.c.Peek(k); ok {
			return versionOf(e)
		}
		return 0
	}
	for id, v := range p.vertices {
		k := vertexKey(id)
		if v.known() {
			wc.c.Add(k, &vertexFacts{version: version(k), label: v.label, props: v.props})
		} else {
			wc.c.Remove(k)
		}
	}
	for k, g := range p.groups {
		if g == nil {
			wc.c.Remove(k)
			continue
		}
		wc.c.Add(k, &groupFacts{version: version(k), gen: p.gen, exact: g.exact, targets: g.targets})
	}
}

// facts returns what the batch established for keys, for the shared cache.
func (p *planner) facts(keys []string) []*graft.SharedFact {
	out := make([]*graft.SharedFact, len(keys))
	for i, k := range keys {
		if graft.IsVertexCacheKey(k) {
			if v := p.vertices[k[2:]]; v != nil && v.known() {
				out[i] = &graft.SharedFact{Label: v.label, Props: v.props}
			}
			continue
		}
		if g := p.groups[k]; g != nil {
			out[i] = &graft.SharedFact{Gen: p.gen, Exact: g.exact, Targets: g.targets}
		}
	}
	return out
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
