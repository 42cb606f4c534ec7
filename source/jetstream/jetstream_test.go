package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/source/jetstream"
)

// slowSink applies batches slowly and checks that each key's writes commit
// in the order they were published (their ids are w<key>-<n>).
type slowSink struct {
	*memgraph.Sink
	delay time.Duration
	t     *testing.T
	mu    sync.Mutex
	last  map[string]int
	seen  int
}

func (s *slowSink) Apply(ctx context.Context, b *graft.Batch) error {
	time.Sleep(s.delay)
	if err := s.Sink.Apply(ctx, b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range b.Writes {
		var n int
		fmt.Sscanf(w.ID[len(w.Key)+2:], "%d", &n)
		if prev, ok := s.last[w.Key]; ok && n <= prev {
			s.t.Errorf("key %s: write %d committed after %d", w.Key, n, prev)
		}
		s.last[w.Key] = n
		s.seen++
	}
	return nil
}

type nopDLQ struct{}

func (nopDLQ) Append(context.Context, []*graft.Letter) error { return nil }

func startEmbedded(t *testing.T, dir string) *jetstream.Embedded {
	t.Helper()
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// JetStream redelivers after the ack wait; with a sink slower than the ack
// wait, in-progress acks and the source's sequence check keep every key in
// order, and nothing is applied twice out of order.
func TestSlowSinkKeepsOrderUnderRedelivery(t *testing.T) {
	for _, progress := range []bool{true, false} {
		t.Run(fmt.Sprintf("in-progress acks %v", progress), func(t *testing.T) {
			t.Parallel()
			slowSinkRun(t, !progress)
		})
	}
}

func slowSinkRun(t *testing.T, noProgress bool) {
	dir := t.TempDir()
	emb := startEmbedded(t, dir)
	defer emb.Close()
	ctx := context.Background()
	cfg := jetstream.DefaultConfig()
	cfg.AckWait = 300 * time.Millisecond
	cfg.NoProgressAcks = noProgress
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 5, 40
	want := model.New()
	var values [][]byte
	for n := 0; n < perKey; n++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("k%d", k)
			w := &graft.Write{Key: key, ID: fmt.Sprintf("w%s-%d", key, n), Ops: []graft.Op{
				{Kind: graft.UpsertVertex, ID: key, Label: "v", Props: graft.Props{"n": graft.Int(int64(n))}},
			}}
			values = append(values, w.AppendJSON(nil))
			if err := want.ApplyWrite(w); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := pub.Publish(ctx, values, nil); err != nil {
		t.Fatal(err)
	}
	src, err := jetstream.New(ctx, emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink := &slowSink{Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: graft.SinkLimits{MaxWrites: 10, MaxUnits: 100, MaxBytes: 1 << 20, Concurrency: 2}},
		delay: 150 * time.Millisecond, t: t, last: map[string]int{}}
	ecfg := engine.Default()
	eng, err := engine.New(sink, nopDLQ{}, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- eng.Run(runCtx, src) }()
	deadline := time.Now().Add(60 * time.Second)
	for eng.Stats().Committed.Load() < keys*perKey && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := eng.Stats().Committed.Load(); got != keys*perKey {
		t.Fatalf("committed %d of %d", got, keys*perKey)
	}
	conformance.CheckModel(t, sink.Graph, want)
	// Everything was acknowledged: a new consumer has nothing left.
	if lag, err := src.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("lag %d, %v", lag, err)
	}
	// With in-progress acks there are normally none; on a loaded machine
	// the keep-alive can be late and the server redeliver anyway (seen
	// with the whole suite running at once): the order checks above are
	// what must hold either way, so the count is only reported.
	t.Logf("the sink took %d batches of at most 10 writes, 150ms each, against a 300ms ack wait; %d redeliveries dropped", sink.seen/10, src.Redelivered())
}

// Acknowledged messages are not delivered again after a restart; the ones
// not acknowledged are.
func TestRestartResumesAfterAcknowledged(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := jetstream.DefaultConfig()
	cfg.AckWait = time.Second // what the first run took and did not acknowledge comes back after it
	emb := startEmbedded(t, dir)
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var values [][]byte
	for i := 0; i < 10; i++ {
		values = append(values, []byte(fmt.Sprintf(`{"ops":[{"op":"upsertVertex","id":"v%d","label":"x"}]}`, i)))
	}
	seqs, err := pub.Publish(ctx, values, []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})
	if err != nil || len(seqs) != 10 || seqs[9] != (graft.Position{Partition: cfg.Stream, Offset: 10}) {
		t.Fatalf("publish: %v %v", seqs, err)
	}
	src, err := jetstream.New(ctx, emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := fetchN(t, src, 10)
	if recs[3].Key != "d" || recs[3].Pos.Offset != 4 {
		t.Fatalf("fetch: record 3 is %+v", recs[3])
	}
	if err := src.Ack(ctx, recs[5].Pos); err != nil {
		t.Fatal(err)
	}
	src.Close()
	emb.Close()

	_, src = startSource(t, dir, cfg)
	again := fetchN(t, src, 4)
	for i, r := range again {
		if r.Pos.Offset != int64(7+i) {
			t.Fatalf("after restart: record %d at offset %d, want %d (%v)", i, r.Pos.Offset, 7+i, again)
		}
		// The derived version is the stream sequence, the same after a
		// restart (graft.Versioner).
		if r.Version != r.Pos.Offset {
			t.Fatalf("after restart: record %d has version %d, want its sequence %d", i, r.Version, r.Pos.Offset)
		}
	}
	if len(again) != 4 {
		t.Fatalf("after restart: %d records, want 4", len(again))
	}
}

// startSource starts the embedded server on dir and a source on it, both
// stopped when the test ends.
func startSource(t *testing.T, dir string, cfg jetstream.Config) (*jetstream.Embedded, *jetstream.Source) {
	t.Helper()
	emb := startEmbedded(t, dir)
	t.Cleanup(emb.Close)
	src, err := jetstream.New(context.Background(), emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return emb, src
}

// fetchN fetches until n records are in: a fetch returns what has arrived.
func fetchN(t *testing.T, src *jetstream.Source, n int) []graft.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []graft.Record
	for len(out) < n {
		recs, err := src.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", len(out), err)
		}
		out = append(out, recs...)
	}
	return out
}

// The consumer lost by the server (deleted, as after a server restart
// without its state) is opened again from its ack floor: the engine keeps
// running and every write lands once, in order. Before, the first error of
// the message iterator stopped the engine and graft run exited.
func TestConsumerLostIsReopened(t *testing.T) {
	r := startFaultRun(t, jetstream.DefaultConfig())
	r.publish(0, 100)
	r.waitCommitted(100)
	js, _ := natsjs.New(r.emb.Conn())
	if err := js.DeleteConsumer(context.Background(), r.cfg.Stream, r.cfg.Durable); err != nil {
		t.Fatal(err)
	}
	r.publish(100, 100)
	r.waitCommitted(200)
	if n := r.stop(); n != 200 {
		t.Fatalf("%d vertices, want 200", n)
	}
}

// faultRun is an engine reading the embedded stream into an ordered sink,
// for the fault tests: publish writes, wait for commits, stop.
type faultRun struct {
	t      *testing.T
	emb    *jetstream.Embedded
	cfg    jetstream.Config
	pub    *jetstream.Publisher
	sink   *slowSink
	e      *engine.Engine
	cancel context.CancelFunc
	done   chan error
}

func startFaultRun(t *testing.T, cfg jetstream.Config) *faultRun {
	t.Helper()
	ctx := context.Background()
	r := &faultRun{t: t, emb: startEmbedded(t, t.TempDir()), cfg: cfg, done: make(chan error, 1)}
	t.Cleanup(r.emb.Close)
	var err error
	if r.pub, err = jetstream.NewPublisher(ctx, r.emb.Conn(), cfg); err != nil {
		t.Fatal(err)
	}
	src, err := jetstream.New(ctx, r.emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	r.sink = &slowSink{Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: graft.SinkLimits{MaxWrites: 10, MaxUnits: 100, MaxBytes: 1 << 20, Concurrency: 2}},
		t: t, last: map[string]int{}}
	ecfg := engine.Default()
	ecfg.BackoffBase, ecfg.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
	if r.e, err = engine.New(r.sink, nopDLQ{}, ecfg); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() { r.done <- r.e.Run(runCtx, src) }()
	return r
}

// publish puts writes from..from+n-1 (five keys, ids the slow sink checks
// the order of).
func (r *faultRun) publish(from, n int) {
	r.t.Helper()
	var vals [][]byte
	var keys []string
	for i := from; i < from+n; i++ {
		key := fmt.Sprintf("k%d", i%5)
		vals = append(vals, fmt.Appendf(nil, `{"key":%q,"id":"w%s-%d","ops":[{"op":"upsertVertex","id":"v%d","label":"x"}]}`, key, key, i, i))
		keys = append(keys, key)
	}
	if _, err := r.pub.Publish(context.Background(), vals, keys); err != nil {
		r.t.Fatal(err)
	}
}

// waitCommitted waits for n commits, failing if the engine stops or 30 s
// pass.
func (r *faultRun) waitCommitted(n int64) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.e.Stats().Committed.Load() < n {
		select {
		case err := <-r.done:
			r.t.Fatalf("the engine stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d committed", r.e.Stats().Committed.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the run and returns the vertices the sink holds.
func (r *faultRun) stop() int {
	r.t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Fatal(err)
	}
	vs, _ := r.sink.Graph.Snapshot()
	return len(vs)
}

// Deliveries the source never saw (a client-side drop: "slow consumer,
// messages dropped"; here another client takes a few from the durable
// consumer once) come back after the ack wait behind newer ones. Taking them
// then would reorder their keys, and dropping them as redeliveries (they
// are below the highest sequence seen) would lose them silently. The source
// sees the gap in the consumer's delivery sequence, lets what it holds
// finish, and rewinds to the acknowledged position: every write lands, in
// order.
func TestDeliveryGapRewinds(t *testing.T) {
	cfg := jetstream.DefaultConfig()
	cfg.AckWait = 500 * time.Millisecond
	r := startFaultRun(t, cfg)
	r.publish(0, 50)
	r.waitCommitted(50)
	// Another client takes a few deliveries and never acknowledges them.
	ctx := context.Background()
	js, _ := natsjs.New(r.emb.Conn())
	thief, err := js.Consumer(ctx, cfg.Stream, cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := thief.Fetch(5, natsjs.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r.publish(50, 10)
	stolen := 0
	for range batch.Messages() {
		stolen++
	}
	if stolen == 0 {
		t.Fatal("the other client took nothing: the test proves nothing")
	}
	r.publish(60, 40)
	r.waitCommitted(100)
	if n := r.stop(); n != 100 {
		t.Fatalf("%d vertices, want 100 (%d deliveries taken by another client)", n, stolen)
	}
}

// The embedded stream keeps the backlog only: acknowledged messages are
// removed (before, 3.9M writes left 1.75 GB in the data directory for
// good). And it is bounded: past stream.max_bytes a publish is refused as
// ErrStreamFull, which HTTP ingest answers with 503 and Retry-After.
func TestStreamTrimmedAndBounded(t *testing.T) {
	emb := startEmbedded(t, t.TempDir())
	defer emb.Close()
	ctx := context.Background()
	cfg := jetstream.DefaultConfig()
	cfg.TrimAcked, cfg.MaxBytes = true, 256<<10
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := jetstream.New(ctx, emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	js, _ := natsjs.New(emb.Conn())
	info := func() *natsjs.StreamInfo {
		st, err := js.Stream(ctx, cfg.Stream)
		if err != nil {
			t.Fatal(err)
		}
		i, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	pad := strings.Repeat("x", 200)
	var vals [][]byte
	for i := range 3000 {
		vals = append(vals, fmt.Appendf(nil, `{"key":"k%d","ops":[{"op":"upsertVertex","id":"v%d","label":"x","props":{"p":%q}}]}`, i%7, i, pad))
	}
	// Bounded: 3,000 records of ~280 bytes do not fit in 256 KiB.
	_, err = pub.Publish(ctx, vals, nil)
	if !errors.Is(err, jetstream.ErrStreamFull) {
		t.Fatalf("publishing past max_bytes: %v, want ErrStreamFull", err)
	}
	held := info().State.Msgs
	if held == 0 || held >= 3000 {
		t.Fatalf("the stream holds %d messages", held)
	}
	// Trimmed: once consumed and acknowledged, the stream is emptied.
	e, err := engine.New(&memgraph.Sink{Graph: memgraph.New()}, nopDLQ{}, engine.Default())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, src) }()
	deadline := time.Now().Add(30 * time.Second)
	for (e.Stats().Committed.Load() < int64(held) || info().State.Msgs > 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if st := info().State; st.Msgs != 0 || st.Bytes != 0 {
		t.Fatalf("after everything was acknowledged the stream still holds %d messages, %d bytes", st.Msgs, st.Bytes)
	}
	// Room again: the rest can be published.
	if _, err := pub.Publish(ctx, vals[:100], nil); err != nil {
		t.Fatalf("after trimming: %v", err)
	}
}
