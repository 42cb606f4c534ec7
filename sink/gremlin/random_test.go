package gremlin

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/workload"
)

// The engine writes a random workload — hot vertices, replaceEdges, edges
// to vertices that other keys delete for good, poison writes with the wrong
// label — into the real server's transactional graph. One committed batch
// in eight is reported to the engine as failed (a commit whose outcome the
// client never heard), so the engine applies it again on the real store.
// The exported graph equals the model (internal/model, which shares no code
// with the sink) and the dead letters are exactly the writes it rejects.
//
// One batch at a time (concurrency=1): with four at once, some runs end
// with TinkerTransactionGraph (3.7.4 and 3.7.5) corrupt — edges whose
// vertex is null, a NullPointerException on every later request. Not yet
// explained: docs/gremlin.md says what is known. Concurrent transactions
// are tested by TestConcurrentEnginesConflictOnHubs.
func TestRandomWorkloadOnRealServer(t *testing.T) {
	for _, tc := range []struct {
		name         string
		seed         uint64
		keys, stable int
		janus        bool
	}{
		{"hot vertices, few keys", 1, 6, 12, false},
		{"many keys", 2, 200, 150, false},
		{"JanusGraph, four batches at once", 3, 20, 40, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s, w *Store
			if tc.janus {
				graphMu.Lock()
				t.Cleanup(graphMu.Unlock)
				s = open(t, janusGraph(t).URL("g"))
				if err := s.Reset(context.Background()); err != nil {
					t.Fatal(err)
				}
				w = s
			} else {
				s = emptyGraph(t, "gtx")
				w = open(t, gremlinServer(t).URL("gtx")+"&writes=50&concurrency=1")
			}
			wl := workload.Random(t, tc.seed, 2000, tc.keys, tc.stable)
			if tc.janus {
				wl = workload.RandomTypedKeys(t, tc.seed, 2000, tc.keys, tc.stable) // its keys are typed by their first value
			}
			sink := &inDoubt{Store: w, p: 0.125, t: t, rng: rand.New(rand.NewPCG(tc.seed, 3))}
			cfg := engine.Default()
			cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 20*time.Millisecond
			cfg.ParkDelay, cfg.ParkFor = 5*time.Millisecond, 500*time.Millisecond
			cfg.Linger = time.Millisecond
			dl := &memgraph.Letters{}
			en, err := engine.New(sink, dl, cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := en.Run(ctx, newLineSource(wl.Lines)); err != nil {
				t.Fatal(err)
			}
			wl.CheckLetters(t, dl.All()) // first: CheckModel stops the test
			conformance.CheckModel(t, s, wl.Model)
			st := en.Stats().Snapshot()
			t.Logf("%d writes, %d poison, %d replayed in doubt; %+v", len(wl.Lines), len(wl.Poison), sink.replayed(), st)
			if sink.replayed() == 0 {
				t.Error("no batch was reported in doubt: the test does not test what it says")
			}
		})
	}
}

// inDoubt reports a fraction p of the batches the server committed as
// failed, as a connection lost before the answer would. It also checks
// invariant 5 (no two batches in flight share a vertex), which the server's
// transactions rely on.
type inDoubt struct {
	*Store
	p float64
	t testing.TB

	overlap workload.Overlap
	mu      sync.Mutex
	rng     *rand.Rand
	count   int
}

func (s *inDoubt) Apply(ctx context.Context, b *graft.Batch) error {
	defer s.overlap.Enter(s.t, b)()
	if err := s.Store.Apply(ctx, b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rng.Float64() < s.p {
		s.count++
		return graft.NewError(graft.Transient, errors.New("injected: the answer to a committed batch was lost"))
	}
	return nil
}

func (s *inDoubt) replayed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}
