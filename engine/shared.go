package engine

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
)

// SharedCache is a write cache shared by every graft process writing one
// graph (sharedcache.Redis). The in-process cache stays in front of it: each
// batch first asks the shared cache which of its elements changed since the
// process last saw them (one round trip), so a fact another process made
// stale is never used.
//
// The protocol that keeps shared facts true (docs/cache.md): a batch marks
// the elements it will write (Begin) before applying, and publishes what it
// established after its commit (Publish), or forgets them after a failure
// (Abort). A fact is published only by a batch that overlapped no other
// batch on that element; everything else deletes it.
type SharedCache interface {
	// Load returns the state of keys given the versions the process holds
	// (have[i], 0 for none): Same when unchanged, else the shared fact (nil
	// when nothing is known). Also the generation of edge groups and the
	// cache's epoch: a new epoch means every fact held locally is void.
	Load(ctx context.Context, keys []string, have []uint64) (Loaded, error)
	// Begin marks keys as being written; deletes says the batch deletes a
	// vertex (which voids every edge group).
	Begin(ctx context.Context, keys []string, deletes bool) (Ticket, error)
	// Publish stores the facts (facts[i] for the ticket's keys[i], nil:
	// unknown) established by the committed batch.
	Publish(ctx context.Context, t Ticket, facts []*SharedFact) error
	// Abort forgets the ticket's keys: the batch failed or may have.
	Abort(ctx context.Context, t Ticket) error
	// Recover starts a new epoch: called when the cache is reachable again
	// after an outage, during which this process wrote without marking.
	Recover(ctx context.Context) error
}

// Loaded is the answer of SharedCache.Load.
type Loaded struct {
	Epoch, Gen uint64
	Same       []bool
	Facts      []*SharedFact
}

// Ticket is what Begin returns, for Publish or Abort.
type Ticket struct {
	Keys     []string
	Versions []uint64 // each key's version, taken by Begin
	Alone    []bool   // no other batch was writing the key when Begin ran
	Deletes  bool
	Epoch    uint64 // of the Load the batch was planned with
}

// SharedFact is what is known of an element: a vertex (its key starts with
// "v\x00") or an edge group ("g\x00").
type SharedFact struct {
	Version uint64
	Label   string      // vertex
	Props   graft.Props // vertex: at least these values
	Gen     uint64      // group: the generation it belongs to
	Exact   bool        // group: Targets is every target
	Targets map[string]graft.Props
}

// IsVertexKey reports whether a cache key names a vertex (else an edge group).
func IsVertexKey(k string) bool { return len(k) > 1 && k[0] == 'v' && k[1] == 0 }

// sharedState is the engine's side of a shared cache: reachability and the
// epoch its local entries belong to.
type sharedState struct {
	c     SharedCache
	log   *slog.Logger
	stats *Stats

	epoch atomic.Uint64
	down  atomic.Bool
	mu    sync.Mutex
	tried time.Time
}

// usable reports whether to use the shared cache for the next batch; while
// it is down, it retries once a second and, when it answers, starts a new
// epoch before use.
func (s *sharedState) usable(ctx context.Context, wc *writeCache) bool {
	if !s.down.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down.Load() {
		return true
	}
	if time.Since(s.tried) < time.Second {
		return false
	}
	s.tried = time.Now()
	if err := s.c.Recover(ctx); err != nil {
		return false
	}
	wc.purge()
	s.down.Store(false)
	s.log.Warn("write cache: the shared cache is reachable again; new epoch, write elimination resumes")
	return true
}

// failed records an error of the shared cache: it is bypassed (no op is
// eliminated by any cache) until it answers again.
func (s *sharedState) failed(wc *writeCache, err error) {
	s.stats.CacheErrors.Add(1)
	wc.purge()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down.Load() {
		s.down.Store(true)
		s.tried = time.Now()
		s.log.Warn("write cache: the shared cache failed; bypassed until it answers (nothing is eliminated meanwhile)", "err", err)
	}
}

// batchKeys returns the cache keys a batch's planner may read: the vertex of
// every vertex op and the group of every edge op.
func batchKeys(ws []*graft.Write) []string {
	seen := map[string]bool{}
	var keys []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, w := range ws {
		for i := range w.Ops {
			op := &w.Ops[i]
			switch op.Kind {
			case graft.UpsertVertex, graft.DeleteVertex, graft.DropVertexProps:
				add(vertexKey(op.ID))
			default:
				add(groupKey(op.From, op.Label))
			}
		}
	}
	return keys
}
