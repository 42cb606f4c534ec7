package redis_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/internal/redistest"
	redislock "github.com/graftdb/graft/lock/redis"
	"github.com/graftdb/graft/semantics"
)

func newLocker(t *testing.T, srv *redistest.Server) *redislock.Locker {
	t.Helper()
	ro, prefix, err := redislock.ParseURL(srv.URL(0) + "?prefix=t:")
	if err != nil {
		t.Fatal(err)
	}
	l := redislock.New(goredis.NewClient(ro), prefix)
	t.Cleanup(func() { l.Close() })
	return l
}

// All or nothing, expiry, renewal, release by the holder only, and tokens
// that grow with every acquisition.
func TestLeases(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newLocker(t, srv), newLocker(t, srv)
	ctx := context.Background()
	la, ok, err := a.Acquire(ctx, []string{"k1", "k2"}, time.Second)
	if err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if _, ok, _ := b.Acquire(ctx, []string{"k2", "k3"}, time.Second); ok {
		t.Fatal("b took k2, which a holds")
	}
	lb, ok, _ := b.Acquire(ctx, []string{"k3"}, time.Second)
	if !ok {
		t.Fatal("b's failed attempt left k3 taken: not all-or-nothing")
	}
	if lb.Token <= la.Token {
		t.Fatalf("tokens %d then %d: they must grow", la.Token, lb.Token)
	}
	// Renewal keeps a lease past its TTL.
	short, ok, _ := a.Acquire(ctx, []string{"r"}, 300*time.Millisecond)
	if !ok {
		t.Fatal("r")
	}
	for range 6 {
		time.Sleep(100 * time.Millisecond)
		if ok, err := a.Renew(ctx, short, 300*time.Millisecond); !ok || err != nil {
			t.Fatalf("renew: %v %v", ok, err)
		}
	}
	if _, ok, _ := b.Acquire(ctx, []string{"r"}, time.Second); ok {
		t.Fatal("b took r while a renewed it")
	}
	// Expiry: a stops renewing; b takes the key with a higher token; a's
	// renewal reports the loss and its release leaves b's lock alone.
	time.Sleep(400 * time.Millisecond)
	lr, ok, _ := b.Acquire(ctx, []string{"r"}, time.Second)
	if !ok || lr.Token <= short.Token {
		t.Fatalf("after expiry: %v, token %d after %d", ok, lr.Token, short.Token)
	}
	if ok, err := a.Renew(ctx, short, time.Second); ok || err != nil {
		t.Fatalf("renew of a lost lease: %v %v", ok, err)
	}
	if err := a.Release(ctx, short); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Acquire(ctx, []string{"r"}, time.Second); ok {
		t.Fatal("a's release of a lost lease freed b's lock")
	}
	if err := a.Release(ctx, la); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Acquire(ctx, []string{"k1", "k2"}, time.Second); !ok {
		t.Fatal("released keys are still held")
	}
}

// exclusive is a sink that counts batches of one key in flight at once.
type exclusive struct {
	*memgraph.Sink
	delay    time.Duration
	mu       sync.Mutex
	inflight map[string]int
	overlaps atomic.Int64
	fenced   atomic.Int64
	applies  atomic.Int64
	stall    func(b *graft.Batch) // called before applying, if set
}

func (s *exclusive) Apply(ctx context.Context, b *graft.Batch) error {
	s.applies.Add(1)
	keys := b.FenceKeys()
	s.mu.Lock()
	for _, k := range keys {
		if s.inflight[k] > 0 {
			s.overlaps.Add(1)
		}
		s.inflight[k]++
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		for _, k := range keys {
			s.inflight[k]--
		}
		s.mu.Unlock()
	}()
	if s.stall != nil {
		s.stall(b)
	}
	time.Sleep(s.delay)
	err := s.Sink.Apply(ctx, b)
	if errors.Is(err, graft.ErrFenced) {
		s.fenced.Add(1)
	}
	return err
}

type sliceSource struct {
	recs []graft.Record
	done bool
}

func (s *sliceSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	if s.done {
		<-ctx.Done()
		return nil, io.EOF
	}
	s.done = true
	return s.recs, nil
}
func (s *sliceSource) Ack(context.Context, graft.Position) error { return nil }
func (s *sliceSource) Close() error                              { return nil }

type noLetters struct{}

func (noLetters) Append(context.Context, []*graft.Letter) error { return nil }

// process runs an engine over writes until they are all committed.
func process(t *testing.T, sink graft.Sink, l graft.Locker, ttl time.Duration, ws []*graft.Write) chan engine.Snapshot {
	t.Helper()
	cfg := engine.Default()
	cfg.Locker, cfg.LockTTL = l, ttl
	cfg.Linger = time.Millisecond
	e, err := engine.New(sink, noLetters{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := &sliceSource{}
	for i, w := range ws {
		src.recs = append(src.recs, graft.Record{Value: w.AppendJSON(nil), Pos: graft.Position{Partition: "p", Offset: int64(i + 1)}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan engine.Snapshot, 1)
	go e.Run(ctx, src)
	go func() {
		defer cancel()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if st := e.Stats().Snapshot(); st.Committed+st.DeadLetters >= int64(len(ws)) {
				out <- st
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Errorf("not all writes committed: %+v", e.Stats().Snapshot())
		out <- e.Stats().Snapshot()
	}()
	return out
}

// overlapping returns writes of four keys, each setting its own property
// (so that the final graph does not depend on which process ran which).
func overlapping(from, n int) []*graft.Write {
	var ws []*graft.Write
	for i := from; i < from+n; i++ {
		k := fmt.Sprintf("k%d", i%4)
		ws = append(ws, &graft.Write{Key: k, Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: "v-" + k, Label: "v", Props: graft.Props{fmt.Sprintf("w%d", i): graft.Int(int64(i))}}}})
	}
	return ws
}

// Two graft processes get writes of the same keys. Without the locker their
// batches of one key overlap (the sink sees it); with it, never, and the
// graph holds every write.
func TestTwoProcessesOverlappingKeys(t *testing.T) {
	srv := redistest.Start(t)
	run := func(withLock bool) (*exclusive, *semantics.Graph) {
		g := memgraph.New()
		sink := &exclusive{Sink: &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxWrites: 3, MaxUnits: 100, MaxBytes: 1 << 20, Concurrency: 4}},
			delay: 3 * time.Millisecond, inflight: map[string]int{}}
		var la, lb graft.Locker
		if withLock {
			la, lb = newLocker(t, srv), newLocker(t, srv)
		}
		a := process(t, sink, la, time.Second, overlapping(0, 300))
		b := process(t, sink, lb, time.Second, overlapping(300, 300))
		sa, sb := <-a, <-b
		if withLock && (sa.LocksAcquired == 0 || sb.LocksAcquired == 0 || sa.LockWaits+sb.LockWaits == 0) {
			t.Errorf("lock stats: a %d acquired %d waits, b %d / %d", sa.LocksAcquired, sa.LockWaits, sb.LocksAcquired, sb.LockWaits)
		}
		return sink, g
	}
	unlocked, _ := run(false)
	if unlocked.overlaps.Load() == 0 {
		t.Fatal("without the locker no batches overlapped: the test cannot tell")
	}
	locked, g := run(true)
	if n := locked.overlaps.Load(); n != 0 {
		t.Fatalf("with the locker, %d batches ran while another held one of their keys", n)
	}
	want := model.New()
	if err := want.ApplyBatch(append(overlapping(0, 300), overlapping(300, 300)...)); err != nil {
		t.Fatal(err)
	}
	wv, we := want.Snapshot()
	gv, ge := g.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
	t.Logf("unlocked: %d overlapping batches; locked: 0", unlocked.overlaps.Load())
}

// pausedLocker never renews (a process stopped by a long GC pause or a VM
// freeze does not), so its lease expires while its batch is stalled.
type pausedLocker struct{ *redislock.Locker }

func (pausedLocker) Renew(context.Context, graft.Lease, time.Duration) (bool, error) {
	return true, nil
}

// A holder whose lease expired while it was paused is refused by the sink's
// fencing once a newer holder has written the key; it retries with a new
// lease and its write lands after.
func TestStaleHolderIsFenced(t *testing.T) {
	srv := redistest.Start(t)
	g := memgraph.New()
	stalled := make(chan struct{})
	resume := make(chan struct{})
	var once sync.Once
	sinkA := &exclusive{Sink: &memgraph.Sink{Graph: g}, inflight: map[string]int{}, stall: func(*graft.Batch) {
		once.Do(func() { close(stalled); <-resume })
	}}
	sinkB := &exclusive{Sink: &memgraph.Sink{Graph: g}, inflight: map[string]int{}}
	a := process(t, sinkA, pausedLocker{newLocker(t, srv)}, 300*time.Millisecond, []*graft.Write{
		{Key: "k", Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: "v", Label: "v", Props: graft.Props{"by": graft.String("a")}}}}})
	<-stalled
	time.Sleep(400 * time.Millisecond) // a's lease expires
	b := process(t, sinkB, newLocker(t, srv), 300*time.Millisecond, []*graft.Write{
		{Key: "k", Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: "v", Label: "v", Props: graft.Props{"by": graft.String("b"), "b": graft.Bool(true)}}}}})
	<-b
	close(resume)
	st := <-a
	if sinkA.fenced.Load() != 1 {
		t.Fatalf("a's stale batch: %d refused by fencing, want 1", sinkA.fenced.Load())
	}
	if st.Conflicts == 0 || st.Committed != 1 {
		t.Fatalf("a: %+v; want the fenced attempt retried and committed", st)
	}
	v, err := g.Vertex(context.Background(), "v")
	if err != nil || v.Props["by"] != graft.String("a") || v.Props["b"] != graft.Bool(true) {
		t.Fatalf("vertex %+v %v: want b's write, then a's retried on top", v, err)
	}
}

// The locker unreachable: the engine writes nothing and is not ready; when
// Redis is back, it resumes.
func TestLockerDownPausesWriting(t *testing.T) {
	srv := redistest.Start(t)
	g := memgraph.New()
	sink := &exclusive{Sink: &memgraph.Sink{Graph: g}, inflight: map[string]int{}}
	l := newLocker(t, srv)
	srv.Kill()
	cfg := engine.Default()
	cfg.Locker = l
	e, err := engine.New(sink, noLetters{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ws := overlapping(0, 20)
	src := &sliceSource{}
	for i, w := range ws {
		src.recs = append(src.recs, graft.Record{Value: w.AppendJSON(nil), Pos: graft.Position{Partition: "p", Offset: int64(i + 1)}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx, src)
	time.Sleep(500 * time.Millisecond)
	if n := sink.applies.Load(); n != 0 {
		t.Fatalf("%d batches applied without a lock", n)
	}
	if err := e.Ready(); err == nil {
		t.Fatalf("engine ready while the locker is unreachable: %+v", e.Stats().Snapshot())
	}
	srv.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for e.Stats().Snapshot().Committed < int64(len(ws)) {
		if time.Now().After(deadline) {
			t.Fatalf("writing did not resume: %+v", e.Stats().Snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.Ready(); err != nil {
		t.Fatalf("still not ready: %v", err)
	}
}
