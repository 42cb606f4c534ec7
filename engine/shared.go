package engine

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
)

// sharedState is the engine's side of a shared cache: reachability and the
// epoch its local entries belong to.
type sharedState struct {
	c     graft.SharedCache
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
