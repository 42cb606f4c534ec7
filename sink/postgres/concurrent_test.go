package postgres

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/model"
)

type writesSource struct {
	mu   sync.Mutex
	recs []graft.Record
}

func newWritesSource(ws []*graft.Write) *writesSource {
	s := &writesSource{}
	for i, w := range ws {
		s.recs = append(s.recs, graft.Record{Value: w.AppendJSON(nil), Pos: graft.Position{Partition: "p", Offset: int64(i + 1)}})
	}
	return s
}

func (s *writesSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	n := min(64, len(s.recs))
	out := s.recs[:n]
	s.recs = s.recs[n:]
	return out, nil
}
func (s *writesSource) Ack(context.Context, graft.Position) error { return nil }
func (s *writesSource) Close() error                              { return nil }

type noDLQ struct{ t testing.TB }

func (d noDLQ) Append(_ context.Context, ls []*graft.Letter) error {
	for _, l := range ls {
		if d.t != nil {
			d.t.Errorf("dead letter: %s %s", l.Class, l.Error)
		}
	}
	return nil
}

// Four graft engines (as two instances without co-partitioning would) write
// the same hub vertices at once, with a 1 ms lock timeout: PostgreSQL
// reports real lock timeouts and deadlocks, the engines classify them as
// conflicts and retry, and the final graph equals the model.
func TestConcurrentWritersConflictAndConverge(t *testing.T) {
	dsn := testDSN(t) + "&lock_timeout=1ms&deadlock_timeout=10ms"
	ctx := context.Background()
	store, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	want := model.New()
	const hubs = 6
	setup := &graft.Write{Key: "setup"}
	for h := 0; h < hubs; h++ {
		setup.Ops = append(setup.Ops, graft.Op{Kind: graft.UpsertVertex, ID: fmt.Sprintf("hub%d", h), Label: "hub"})
	}
	if err := store.Apply(ctx, &graft.Batch{Writes: []*graft.Write{setup}}); err != nil {
		t.Fatal(err)
	}
	want.ApplyWrite(setup)
	streams := map[string][]*graft.Write{}
	for _, side := range []string{"a", "b", "c", "d"} {
		for n := 0; n < 600; n++ {
			hub := fmt.Sprintf("hub%d", n%hubs)
			leaf := fmt.Sprintf("%s-leaf%d", side, n%50)
			w := &graft.Write{Key: fmt.Sprintf("%s%d", side, n%7), Ops: []graft.Op{
				{Kind: graft.UpsertVertex, ID: hub, Label: "hub", Props: graft.Props{side: graft.Int(int64(n))}},
				{Kind: graft.UpsertVertex, ID: leaf, Label: "leaf", Props: graft.Props{"n": graft.Int(int64(n))}},
				{Kind: graft.UpsertEdge, Label: "e" + side, From: leaf, To: hub, Props: graft.Props{"n": graft.Int(int64(n))}},
				{Kind: graft.ReplaceEdges, Label: "r" + side, From: hub, Targets: []string{leaf}},
			}}
			if n%50 == 49 {
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DeleteVertex, ID: fmt.Sprintf("%s-leaf%d", side, (n+25)%50)})
			}
			streams[side] = append(streams[side], w)
		}
	}
	// The two streams touch disjoint properties and labels: applied in
	// either order, they give the same graph.
	for _, side := range []string{"a", "b", "c", "d"} {
		for _, w := range streams[side] {
			if err := want.ApplyWrite(w); err != nil {
				t.Fatalf("model: %v", err)
			}
		}
	}
	var wg sync.WaitGroup
	var conflicts int64
	var mu sync.Mutex
	for _, side := range []string{"a", "b", "c", "d"} {
		cfg := engine.Default()
		cfg.MaxBatchWrites = 64
		cfg.ParkFor = 0
		e, err := engine.New(store, noDLQ{t}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(side string) {
			defer wg.Done()
			if err := e.Run(ctx, newWritesSource(streams[side])); err != nil {
				t.Errorf("engine %s: %v", side, err)
			}
			mu.Lock()
			conflicts += e.Stats().Conflicts.Load()
			mu.Unlock()
		}(side)
	}
	wg.Wait()
	conformance.CheckModel(t, store, want)
	if conflicts == 0 {
		t.Fatal("no conflict was reported: the test did not provoke any")
	}
	t.Logf("%d conflicts (lock timeouts and deadlocks) classified and retried", conflicts)
}
