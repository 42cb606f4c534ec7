package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
)

// healingSource fails its fetches with a healable error while down is set,
// as a stream does when it misses a heartbeat or reconnects.
type healingSource struct {
	*sliceSource
	down  atomic.Bool
	fails atomic.Int64
	err   error
}

func (s *healingSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	if s.down.Load() {
		s.fails.Add(1)
		return nil, s.err
	}
	return s.sliceSource.Fetch(ctx)
}

// A source error that can heal does not stop the engine: it is retried,
// counted and shown by Ready until the source reads again, and every record
// lands. Before, the first such error stopped the engine ("source failed;
// draining") and graft run exited.
func TestHealableSourceError(t *testing.T) {
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf(`{"key":"k%d","ops":[{"op":"upsertVertex","id":"v%d","label":"x"}]}`, i%7, i))
	}
	src := &healingSource{sliceSource: newSliceSource(t, lines, 2, nil), err: graft.NewError(graft.Transient, errors.New("nats: no heartbeat received"))}
	src.chunk = 50
	src.down.Store(true)
	g := memgraph.New()
	cfg := engine.Default()
	cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 5*time.Millisecond
	e, err := engine.New(&memgraph.Sink{Graph: g, Lim: testLimits}, &memDLQ{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src) }()
	for src.fails.Load() < 3 {
		select {
		case err := <-done:
			t.Fatalf("the engine stopped on a source error that can heal: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	if err := e.Ready(); err == nil || !errors.Is(err, src.err) {
		t.Fatalf("Ready while the source fails: %v", err)
	}
	src.down.Store(false)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if e.Ready() != nil || e.Stats().SourceErrors.Load() < 3 {
		t.Fatalf("after healing: ready %v, %d source errors counted", e.Ready(), e.Stats().SourceErrors.Load())
	}
	vs, _ := g.Snapshot()
	if len(vs) != 200 {
		t.Fatalf("%d vertices, want 200", len(vs))
	}
	// An error that cannot heal still stops the engine, naming it.
	src = &healingSource{sliceSource: newSliceSource(t, lines, 2, nil), err: errors.New("consumer deleted")}
	src.down.Store(true)
	e, _ = engine.New(&memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}, &memDLQ{}, cfg)
	if err := e.Run(context.Background(), src); err == nil || !errors.Is(err, src.err) {
		t.Fatalf("a fatal source error: %v", err)
	}
}
