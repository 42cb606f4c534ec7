package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/workload"
)

// sliceSource delivers fixed records, several partitions interleaved, and
// records acknowledgements.
type sliceSource struct {
	mu    sync.Mutex
	recs  []graft.Record
	next  int
	acks  map[string][]int64
	chunk int
	t     testing.TB
}

func newSliceSource(t testing.TB, lines []string, partitions int, from map[string]int64) *sliceSource {
	s := &sliceSource{acks: map[string][]int64{}, chunk: 64, t: t}
	offsets := map[string]int64{}
	for i, l := range lines {
		p := "p" + strconv.Itoa(i%partitions)
		offsets[p]++
		if offsets[p] <= from[p] {
			continue // acknowledged in an earlier run
		}
		s.recs = append(s.recs, graft.Record{Value: []byte(l), Pos: graft.Position{Partition: p, Offset: offsets[p]}})
	}
	return s
}

func (s *sliceSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.recs) {
		return nil, io.EOF
	}
	end := min(s.next+s.chunk, len(s.recs))
	out := append([]graft.Record(nil), s.recs[s.next:end]...)
	s.next = end
	return out, nil
}

func (s *sliceSource) Ack(_ context.Context, pos graft.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.acks[pos.Partition]
	if len(a) > 0 && pos.Offset <= a[len(a)-1] {
		s.t.Errorf("ack of %s:%d after %d: acknowledgements must move forward", pos.Partition, pos.Offset, a[len(a)-1])
	}
	s.acks[pos.Partition] = append(a, pos.Offset)
	return nil
}

func (s *sliceSource) Close() error { return nil }

func (s *sliceSource) acked() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int64{}
	for p, a := range s.acks {
		m[p] = a[len(a)-1]
	}
	return m
}

// memDLQ keeps letters in memory.
type memDLQ struct {
	mu      sync.Mutex
	letters []*graft.Letter
}

func (d *memDLQ) Append(_ context.Context, ls []*graft.Letter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.letters = append(d.letters, ls...)
	return nil
}

func (d *memDLQ) all() []*graft.Letter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*graft.Letter(nil), d.letters...)
}

func (d *memDLQ) byID() map[string]*graft.Letter {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]*graft.Letter{}
	for _, l := range d.letters {
		m[l.WriteID] = l
	}
	return m
}

// faultySink wraps a memgraph sink. It injects failures at random and checks
// invariants 1 (per-key order of commits) and 5 (no two batches in flight
// share a vertex) as it goes.
type faultySink struct {
	*memgraph.Sink
	t testing.TB

	mu        sync.Mutex
	rng       *rand.Rand
	overlap   workload.Overlap
	lastSeq   map[string]int // key → seq of its last committed write
	committed map[int]bool

	pTransient, pConflict, pInDoubt, pUnattributed float64
	maxConcurrent, concurrent                      int
}

func newFaultySink(t testing.TB, seed uint64, lim graft.SinkLimits) *faultySink {
	return &faultySink{
		Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: lim}, t: t,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		lastSeq: map[string]int{}, committed: map[int]bool{},
	}
}

func writeSeq(w *graft.Write) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(w.ID, "w"))
	return n
}

func (f *faultySink) Apply(ctx context.Context, b *graft.Batch) error {
	defer f.overlap.Enter(f.t, b)()
	f.mu.Lock()
	f.concurrent++
	f.maxConcurrent = max(f.maxConcurrent, f.concurrent)
	r := f.rng.Float64()
	unattributed := f.rng.Float64() < f.pUnattributed
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.concurrent--
		f.mu.Unlock()
	}()

	switch {
	case r < f.pTransient:
		return graft.NewError(graft.Transient, errors.New("injected: connection reset"))
	case r < f.pTransient+f.pConflict:
		return graft.NewError(graft.Conflict, errors.New("injected: ConcurrentModificationException"))
	}
	err := f.Sink.Apply(ctx, b)
	if err != nil {
		if unattributed {
			return graft.NewError(graft.ClassOf(err), fmt.Errorf("batch failed: %v", err))
		}
		return err
	}
	if r < f.pTransient+f.pConflict+f.pInDoubt {
		// Committed, but the caller hears of a failure: it must re-apply.
		return graft.NewError(graft.Transient, errors.New("injected: commit outcome unknown"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range b.Writes {
		s := writeSeq(w)
		if last, ok := f.lastSeq[w.Key]; ok && s <= last {
			f.t.Errorf("invariant 1: key %q committed write %d after write %d", w.Key, s, last)
		}
		f.lastSeq[w.Key] = s
		f.committed[s] = true
	}
	return nil
}

// feedSource delivers the records the test sends, then io.EOF (one
// instance's source: the in-process write cache serves it).
type feedSource struct{ steps chan []graft.Record }

func (s *feedSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	select {
	case recs, ok := <-s.steps:
		if !ok {
			return nil, io.EOF
		}
		return recs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *feedSource) Ack(context.Context, graft.Position) error { return nil }
func (s *feedSource) Close() error                              { return nil }

// waitCommitted waits until e committed n records; it fails the test if
// Run (whose result done carries) returns first, or after 30 s.
func waitCommitted(t *testing.T, e *engine.Engine, n int64, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); e.Stats().Committed.Load() < n; time.Sleep(time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("Run returned before %d records were committed: %v", n, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records were not committed within 30 s (%d were)", n, e.Stats().Committed.Load())
		}
	}
}
