package workload

import (
	"sync"
	"testing"

	"github.com/graftdb/graft"
)

// Overlap checks invariant 5 from outside the engine: no two batches in
// flight share a vertex. The conflict domain is read from the wire
// format's meaning — every vertex id a write names, and every edge's
// endpoints — not with Op.Vertices, which the engine uses: a bug there must
// not blind the check. The zero value is ready.
type Overlap struct {
	mu       sync.Mutex
	inflight map[string]int
}

// Enter registers b as in flight, reporting every vertex already in a batch
// in flight, and returns what ends it.
func (o *Overlap) Enter(t testing.TB, b *graft.Batch) (leave func()) {
	vertices := map[string]bool{}
	for _, w := range b.Writes {
		for _, op := range w.Ops {
			for _, id := range append([]string{op.ID, op.From, op.To}, op.Targets...) {
				if id != "" && (id != op.ID || !op.Kind.IsEdge()) {
					vertices[id] = true
				}
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inflight == nil {
		o.inflight = map[string]int{}
	}
	for v := range vertices {
		if o.inflight[v] > 0 {
			t.Errorf("invariant 5: vertex %q is in two batches in flight", v)
		}
		o.inflight[v]++
	}
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		for v := range vertices {
			o.inflight[v]--
		}
	}
}
