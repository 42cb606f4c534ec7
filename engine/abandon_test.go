package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
)

// abandoningSource is a sliceSource that can lose partitions.
type abandoningSource struct {
	*sliceSource
	mu      sync.Mutex
	abandon func(string, int64)
}

func (s *abandoningSource) SetAbandon(f func(string, int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abandon = f
}

// gatedSink applies one write at a time, slowly, and notes which partition
// each applied write came from (its vertex id starts with it).
type gatedSink struct {
	memgraph.Sink
	mu      sync.Mutex
	applied map[string]int
}

func (s *gatedSink) Apply(ctx context.Context, b *graft.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	time.Sleep(time.Duration(len(b.Writes)) * time.Millisecond)
	if err := s.Sink.Apply(ctx, b); err != nil {
		return err
	}
	for _, w := range b.Writes {
		p, _, _ := strings.Cut(w.Ops[0].ID, ":")
		s.applied[p]++
	}
	return nil
}

func (s *gatedSink) count(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[p]
}

// A partition lost to another instance (graft.Abandoner): the engine drops
// its records not yet sent to the sink — no more of them are applied after
// the batches already at the sink — acknowledges none of them (their new
// owner replays them from the last commit), and goes on with the other
// partitions, which all land.
func TestAbandonLostPartition(t *testing.T) {
	const perPartition = 300
	var ls []string
	want := model.New() // the writes of p1 only
	for i := 0; i < 2*perPartition; i++ {
		p, seq := i%2, i/2
		l := fmt.Sprintf(`{"key":"p%d-k%d","ops":[{"op":"upsertVertex","id":"p%d:v%d","label":"x","props":{"seq":%d}}]}`, p, seq%4, p, seq%4, seq)
		ls = append(ls, l)
		if p == 1 {
			w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			want.ApplyWrite(w)
		}
	}
	src := &abandoningSource{sliceSource: newSliceSource(t, ls, 2, nil)}
	src.chunk = 2 * perPartition
	sink := &gatedSink{Sink: memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}, applied: map[string]int{}}
	cfg := testConfig()
	cfg.Concurrency, cfg.MaxBatchWrites = 1, 5
	cfg.CacheSize = -1 // refused alone with a source that loses partitions
	e, err := engine.New(sink, &memDLQ{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src) }()
	for deadline := time.Now().Add(30 * time.Second); sink.count("p0") < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("p0 never reached 20 applied writes (%d)", sink.count("p0"))
		}
		time.Sleep(time.Millisecond)
	}
	src.mu.Lock()
	abandon := src.abandon
	src.mu.Unlock()
	if abandon == nil {
		t.Fatal("the engine did not give the source an abandon function")
	}
	abandon("p0", perPartition)
	at := sink.count("p0")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := e.Stats().Snapshot()
	p0 := sink.count("p0")
	// At most the batch at the sink and the one being built when the
	// request arrived: 2 batches of 5.
	if p0 > at+2*cfg.MaxBatchWrites || p0 >= perPartition {
		t.Fatalf("%d writes of p0 applied, %d when it was abandoned: want no more than the batches in flight", p0, at)
	}
	if st.InFlight() != 0 {
		t.Fatalf("%d records in flight after the run, want 0 (the abandoned ones are out)", st.InFlight())
	}
	if st.Abandoned != int64(perPartition-p0) || st.Committed != int64(perPartition+p0) {
		t.Fatalf("abandoned %d, committed %d; want %d and %d", st.Abandoned, st.Committed, perPartition-p0, perPartition+p0)
	}
	if got := src.acked(); got["p0"] > int64(p0) || got["p1"] != perPartition {
		t.Fatalf("acknowledged %v: want p1 through %d, and p0 at most through the %d writes applied", got, perPartition, p0)
	}
	// p1 is whole: each of its vertices holds its last write.
	mv, _ := want.Snapshot()
	for _, v := range mv {
		got, err := sink.Graph.Vertex(context.Background(), v.ID)
		if err != nil || !got.Props.Equal(v.Props) {
			t.Fatalf("vertex %s: %+v %v, want %+v", v.ID, got, err, v.Props)
		}
	}
}

// stepSource is a feedSource that can lose partitions.
type stepSource struct {
	feedSource
	abandoningSource
}

// A partition that moves to another instance and back (a Kafka rebalance,
// a Kinesis lease) may find the elements its keys write changed by that
// instance meanwhile, and so may a partition that stays while another
// instance writes an element its keys share: a fact the in-process write
// cache holds may be stale, and a write eliminated on it lost. So such a
// source (graft.Rebalancer, graft.Abandoner) is refused with the cache
// alone; without one, here v.p = 1 was written, the other instance set
// v.p = 2, and the partition's next write v.p = 1 lands.
func TestMovingPartitionsRefuseTheCacheAlone(t *testing.T) {
	mem := &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}
	cached, err := engine.New(mem, &memDLQ{}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []graft.Source{&stepSource{}, &rebalancingSource{}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a Run that is not refused fetches nothing until then
		err := cached.Run(ctx, src)
		cancel()
		if !errors.Is(err, engine.ErrCacheNotShared) {
			t.Fatalf("%T with the in-process cache alone: Run = %v, want ErrCacheNotShared", src, err)
		}
	}

	src := &stepSource{feedSource: feedSource{steps: make(chan []graft.Record, 1)}}
	cfg := testConfig()
	cfg.CacheSize = -1
	e, err := engine.New(mem, &memDLQ{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src) }()
	rec := func(off int64, p int) []graft.Record {
		return []graft.Record{{Pos: graft.Position{Partition: "p0", Offset: off},
			Value: fmt.Appendf(nil, `{"key":"k","ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":%d}}]}`, p)}}
	}
	src.steps <- rec(1, 1)
	waitCommitted(t, e, 1, done)
	// Another instance, which held the partition meanwhile, sets v.p = 2.
	w, _ := graft.Decode([]byte(`{"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":2}}]}`), "", graft.DefaultLimits)
	if err := mem.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w}}); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	abandon := src.abandon
	src.mu.Unlock()
	abandon("p0", -1) // the partition is this engine's again
	src.steps <- rec(2, 1)
	close(src.steps)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	v, err := mem.Graph.Vertex(context.Background(), "v")
	if err != nil || !v.Props["p"].Equal(graft.Int(1)) {
		t.Fatalf("v = %+v %v, want p = 1: the write after the partition came back was lost", v, err)
	}
}

// rebalancingSource is a source whose partitions can be revoked.
type rebalancingSource struct{ stepSource }

func (*rebalancingSource) SetDrain(func(context.Context, []string) error) {}
