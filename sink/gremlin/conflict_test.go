package gremlin

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
)

// Three engines write the same hub vertices of a TinkerTransactionGraph at
// once: real concurrent-modification conflicts occur, are classified as
// conflicts and retried, and the final graph equals the model. Each engine
// sets a property of its own on the hubs, so any interleaving of the three
// gives the same graph.
func TestConcurrentEnginesConflictOnHubs(t *testing.T) {
	s := emptyGraph(t, "gtx")
	const engines, perEngine, hubs = 3, 150, 4
	lines := make([][]string, engines)
	want := model.New()
	for e := range engines {
		for i := range perEngine {
			l := fmt.Sprintf(`{"key":"e%d-k%d","id":"e%d-w%d","ops":[{"op":"upsertVertex","id":"hub%d","label":"hub","props":{"by%d":%d}},{"op":"upsertVertex","id":"e%d-v%d","label":"v"},{"op":"upsertEdge","label":"to","from":"e%d-v%d","to":"hub%d"}]}`,
				e, i%7, e, i, i%hubs, e, i, e, i, e, i, i%hubs)
			lines[e] = append(lines[e], l)
			w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if err := want.ApplyWrite(w); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int64
		letters   []*graft.Letter
	)
	for e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sink := open(t, gremlinServer(t).URL("gtx")+"&writes=20")
			cfg := engine.Default()
			cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 50*time.Millisecond
			cfg.Linger = time.Millisecond
			dl := &memgraph.Letters{}
			en, err := engine.New(sink, dl, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			if err := en.Run(ctx, newLineSource(lines[e])); err != nil {
				t.Error(err)
			}
			mu.Lock()
			conflicts += en.Stats().Conflicts.Load()
			letters = append(letters, dl.All()...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, l := range letters {
		t.Errorf("dead letter %s: %s %s", l.WriteID, l.Class, l.Error)
	}
	t.Logf("%d conflicts retried", conflicts)
	if conflicts == 0 {
		t.Error("no conflict occurred: the test does not test what it says")
	}
	conformance.CheckModel(t, s, want)
}

// lineSource delivers lines, one partition, then io.EOF-style end.
type lineSource struct {
	mu    sync.Mutex
	lines []string
	next  int
}

func newLineSource(lines []string) *lineSource { return &lineSource{lines: lines} }

func (s *lineSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.lines) {
		return nil, io.EOF
	}
	end := min(s.next+25, len(s.lines))
	var out []graft.Record
	for i := s.next; i < end; i++ {
		out = append(out, graft.Record{Value: []byte(s.lines[i]), Pos: graft.Position{Partition: "p", Offset: int64(i + 1)}})
	}
	s.next = end
	return out, nil
}

func (s *lineSource) Ack(context.Context, graft.Position) error { return nil }
func (s *lineSource) Close() error                              { return nil }
