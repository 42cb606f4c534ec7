package engine_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
)

// pausableSource delivers records of several partitions in arrival order,
// skipping the partitions the engine paused (their records wait, in order),
// and measures how many records of a partition were delivered and not yet
// applied (done, when applied counts what the sink applied of it): what a
// revoke would have to drain.
type pausableSource struct {
	mu      sync.Mutex
	queue   map[string][]graft.Record
	order   []string // partitions, in the order their records interleave
	paused  map[string]bool
	pauses  int
	sent    map[string]int64 // last offset delivered
	applied func(p string) int64
	maxOpen map[string]int64
}

func newPausableSource(lines []string, partitions int) *pausableSource {
	s := &pausableSource{queue: map[string][]graft.Record{}, paused: map[string]bool{}, sent: map[string]int64{}, maxOpen: map[string]int64{},
		applied: func(string) int64 { return 0 }}
	for i, l := range lines {
		p := fmt.Sprintf("p%d", i%partitions)
		if i < partitions {
			s.order = append(s.order, p)
		}
		s.queue[p] = append(s.queue[p], graft.Record{Value: []byte(l), Pos: graft.Position{Partition: p, Offset: int64(len(s.queue[p]) + 1)}})
	}
	return s
}

// Fetch returns up to 16 records of each partition not paused.
func (s *pausableSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		var out []graft.Record
		left := 0
		for _, p := range s.order {
			q := s.queue[p]
			left += len(q)
			if s.paused[p] {
				continue
			}
			n := min(16, len(q))
			out = append(out, q[:n]...)
			s.queue[p] = q[n:]
			if n > 0 {
				s.sent[p] = q[n-1].Pos.Offset
				s.maxOpen[p] = max(s.maxOpen[p], s.sent[p]-s.applied(p))
			}
		}
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		if left == 0 {
			return nil, io.EOF
		}
		time.Sleep(time.Millisecond) // everything left is paused
	}
}

func (s *pausableSource) Ack(context.Context, graft.Position) error { return nil }

func (s *pausableSource) Close() error { return nil }

func (s *pausableSource) Pause(ps ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		s.paused[p] = true
		s.pauses++
	}
}

func (s *pausableSource) Resume(ps ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		delete(s.paused, p)
	}
}

// slowSink takes a millisecond per batch, so that records pile up in the
// engine, and counts the writes it applied per partition (the key's prefix
// before '-').
type slowSink struct {
	*memgraph.Sink
	mu      sync.Mutex
	applied map[string]int64
}

func (s *slowSink) Apply(ctx context.Context, b *graft.Batch) error {
	time.Sleep(time.Millisecond)
	if err := s.Sink.Apply(ctx, b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range b.Writes {
		p, _, _ := strings.Cut(w.Key, "-")
		s.applied["p"+strings.TrimPrefix(p, "k")]++
	}
	return nil
}

// A partition never holds more records not yet done than the
// per-partition bound (and one fetch): a revoke drains at most that many,
// though the global bound lets in 40 times more.
func TestPerPartitionBound(t *testing.T) {
	var lines []string
	for i := range 6000 { // keys and vertices of one partition each (i%3): the model's order is each partition's
		lines = append(lines, fmt.Sprintf(`{"key":"k%d-%d","ops":[{"op":"upsertVertex","id":"v%d-%d","label":"v","props":{"n":%d}}]}`, i%3, i%17, i%3, i%233, i))
	}
	want := modelOf(t, lines)
	src := newPausableSource(lines, 3)
	sink := &slowSink{Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}, applied: map[string]int64{}}
	src.applied = func(p string) int64 { // called with src.mu held; sink.mu is taken inside it only
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.applied[p]
	}
	cfg := testConfig()
	cfg.CacheSize = -1 // every write reaches the sink, which counts it
	cfg.MaxInflightRecords = 4000
	cfg.MaxInflightPerPartition = 100
	e := run(t, sink, &memDLQ{}, src, cfg)
	conformance.CheckModel(t, sink.Graph, want)
	for p, n := range src.maxOpen {
		if n > 100+16 {
			t.Errorf("partition %s: %d records delivered and not applied, over the bound of 100 (and a fetch of 16)", p, n)
		}
	}
	if src.pauses == 0 || e.Stats().Paused.Load() == 0 {
		t.Errorf("no partition was paused: the test does not test what it says")
	}
	t.Logf("most open records per partition: %v; %d pauses", src.maxOpen, src.pauses)
}

// A partition whose writes park on a vertex that a later record of the
// same partition creates, far past the bound, is not paused: it would
// wait for a record it never reads (invariant 12). Nothing is
// dead-lettered, every edge lands.
func TestPerPartitionBoundNeverStarvesParkedWrites(t *testing.T) {
	var lines []string
	for i := range 400 {
		lines = append(lines, fmt.Sprintf(`{"key":"k%d","ops":[{"op":"upsertVertex","id":"d%d","label":"d"},{"op":"upsertEdge","label":"to","from":"d%d","to":"hub"}]}`, i%40, i, i))
	}
	for i := range 600 {
		lines = append(lines, fmt.Sprintf(`{"key":"f%d","ops":[{"op":"upsertVertex","id":"x%d","label":"x"}]}`, i%40, i))
	}
	hub := `{"key":"h","ops":[{"op":"upsertVertex","id":"hub","label":"hub"}]}`
	lines = append(lines, hub)
	// What one-by-one application gives once the hub exists: every edge.
	want := modelOf(t, append([]string{hub}, lines[:len(lines)-1]...))
	src := newPausableSource(lines, 1) // one partition: the hub is its last record
	sink := &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}
	dlq := &memDLQ{}
	cfg := testConfig()
	cfg.MaxInflightPerPartition = 50
	cfg.ParkFor = 2 * time.Second
	run(t, sink, dlq, src, cfg)
	for _, l := range dlq.all() {
		t.Errorf("dead letter %s: %s %s", l.WriteID, l.Class, l.Error)
	}
	conformance.CheckModel(t, sink.Graph, want)
}

// modelOf applies the lines to a model graph, in order; each must apply.
func modelOf(t *testing.T, lines []string) *model.Graph {
	t.Helper()
	g := model.New()
	for _, l := range lines {
		w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.ApplyWrite(w); err != nil {
			t.Fatal(err)
		}
	}
	return g
}
