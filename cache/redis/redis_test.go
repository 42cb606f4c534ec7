package redis_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	rediscache "github.com/graftdb/graft/cache/redis"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/internal/redistest"
)

// chanSource feeds an engine the records sent to it, until closed.
type chanSource struct {
	ch  chan graft.Record
	mu  sync.Mutex
	off int64
}

func newChanSource() *chanSource { return &chanSource{ch: make(chan graft.Record, 1<<16)} }

func (s *chanSource) send(ws []*graft.Write) {
	for _, w := range ws {
		s.mu.Lock()
		s.off++
		off := s.off
		s.mu.Unlock()
		s.ch <- graft.Record{Value: w.AppendJSON(nil), Pos: graft.Position{Partition: "p", Offset: off}}
	}
}

func (s *chanSource) Fetch(ctx context.Context) ([]graft.Record, error) {
	select {
	case r, ok := <-s.ch:
		if !ok {
			return nil, io.EOF
		}
		recs := []graft.Record{r}
		for len(recs) < 256 {
			select {
			case r, ok := <-s.ch:
				if !ok {
					return recs, nil
				}
				recs = append(recs, r)
			default:
				return recs, nil
			}
		}
		return recs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
func (s *chanSource) Ack(context.Context, graft.Position) error { return nil }
func (s *chanSource) Close() error                              { return nil }

type noLetters struct{}

func (noLetters) Append(context.Context, []*graft.Letter) error { return nil }

// instance is one graft process: an engine with its own in-process cache in
// front of the shared Redis cache.
type instance struct {
	e    *engine.Engine
	src  *chanSource
	done chan error
	sent int64
}

func start(t *testing.T, sink graft.Sink, shared graft.SharedCache) *instance {
	t.Helper()
	cfg := engine.Default()
	cfg.SharedCache = shared
	e, err := engine.New(sink, noLetters{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{e: e, src: newChanSource(), done: make(chan error, 1)}
	go func() { in.done <- e.Run(context.Background(), in.src) }()
	return in
}

// apply sends writes and waits until they are all committed or dead-lettered.
func (in *instance) apply(t *testing.T, ws []*graft.Write) {
	t.Helper()
	in.src.send(ws)
	in.sent += int64(len(ws))
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := in.e.Stats().Snapshot()
		if st.Committed+st.DeadLetters >= in.sent {
			if st.DeadLetters > 0 {
				t.Fatalf("%d dead letters", st.DeadLetters)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes committed", st.Committed, in.sent)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (in *instance) stop(t *testing.T) engine.Snapshot {
	t.Helper()
	close(in.src.ch)
	if err := <-in.done; err != nil {
		t.Fatalf("engine: %v", err)
	}
	return in.e.Stats().Snapshot()
}

func open(t *testing.T, url string) *rediscache.Cache {
	t.Helper()
	r, err := rediscache.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func decode(t *testing.T, lines ...string) []*graft.Write {
	t.Helper()
	var out []*graft.Write
	for _, l := range lines {
		w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		out = append(out, w)
	}
	return out
}

// A fact one process holds in memory is never used once another process has
// changed the element: A learns x.a=1, B sets x.a=2, A's x.a=1 must apply
// again (a stale in-process cache would drop it). The same for an edge group
// replaced by the other process.
func TestNoStaleFactAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	g := memgraph.New()
	sink := &memgraph.Sink{Graph: g}
	a := start(t, sink, open(t, srv.URL(0)))
	b := start(t, sink, open(t, srv.URL(0)))
	want := model.New()
	step := func(in *instance, lines ...string) {
		ws := decode(t, lines...)
		in.apply(t, ws)
		if err := want.ApplyBatch(ws); err != nil {
			t.Fatal(err)
		}
	}
	step(a, `{"ops":[{"op":"upsertVertex","id":"t1","label":"t"},{"op":"upsertVertex","id":"t2","label":"t"},{"op":"upsertVertex","id":"t3","label":"t"}]}`)
	step(a, `{"ops":[{"op":"upsertVertex","id":"x","label":"thing","props":{"a":1}},{"op":"replaceEdges","from":"x","label":"links","to":["t1","t2"]}]}`)
	step(a, `{"ops":[{"op":"upsertVertex","id":"x","label":"thing","props":{"a":1}},{"op":"replaceEdges","from":"x","label":"links","to":["t1","t2"]}]}`)
	if st := a.e.Stats().Snapshot(); st.Eliminated != 2 {
		t.Fatalf("A's repeat: %d ops eliminated, want 2 (the cache works at all)", st.Eliminated)
	}
	step(b, `{"ops":[{"op":"upsertVertex","id":"x","label":"thing","props":{"a":2}},{"op":"replaceEdges","from":"x","label":"links","to":["t3"]}]}`)
	step(a, `{"ops":[{"op":"upsertVertex","id":"x","label":"thing","props":{"a":1}},{"op":"replaceEdges","from":"x","label":"links","to":["t1","t2"]}]}`)
	conformance.CheckModel(t, g, want)
	if st := a.e.Stats().Snapshot(); st.Eliminated != 2 {
		t.Fatalf("A eliminated %d ops; its last write must have applied in full", st.Eliminated)
	}
	// B now repeats A's state: B's in-process cache saw its own write only,
	// the shared cache knows A's: eliminated through Redis.
	step(b, `{"ops":[{"op":"upsertVertex","id":"x","label":"thing","props":{"a":1}},{"op":"replaceEdges","from":"x","label":"links","to":["t2","t1"]}]}`)
	if st := b.stop(t); st.Eliminated != 2 {
		t.Fatalf("B eliminated %d ops, want 2 (learned from A through Redis)", st.Eliminated)
	}
	a.stop(t)
	conformance.CheckModel(t, g, want)
}

// sharedWorkload: keys own property names and edge groups, and share the
// vertices, so that any interleaving of different keys' writes gives the
// same graph as applying them in order (the model), while the processes
// keep overwriting each other's elements.
func sharedWorkload(rng *rand.Rand, n int) []*graft.Write {
	const keys, things = 12, 16
	var ws []*graft.Write
	setup := &graft.Write{Key: "setup"}
	for i := range things {
		setup.Ops = append(setup.Ops, graft.Op{Kind: graft.UpsertVertex, ID: fmt.Sprintf("x%d", i), Label: "thing"})
	}
	for k := range keys {
		setup.Ops = append(setup.Ops, graft.Op{Kind: graft.UpsertVertex, ID: fmt.Sprintf("src%d", k), Label: "source"})
	}
	ws = append(ws, setup)
	for i := range n {
		k := rng.IntN(keys)
		w := &graft.Write{Key: fmt.Sprintf("k%d", k), ID: fmt.Sprintf("w%d", i)}
		x := fmt.Sprintf("x%d", rng.IntN(things))
		prop := fmt.Sprintf("p%d", k)
		switch rng.IntN(5) {
		case 0, 1:
			w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertVertex, ID: x, Label: "thing", Props: graft.Props{prop: graft.Int(int64(rng.IntN(3)))}})
		case 2:
			var ts []string
			for j := range things {
				if rng.IntN(3) == 0 {
					ts = append(ts, fmt.Sprintf("x%d", j))
				}
			}
			w.Ops = append(w.Ops, graft.Op{Kind: graft.ReplaceEdges, From: fmt.Sprintf("src%d", k), Label: "links", Targets: ts})
		case 3:
			w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertEdge, From: fmt.Sprintf("src%d", k), Label: "likes", To: x, Props: graft.Props{"w": graft.Int(int64(rng.IntN(2)))}})
		case 4:
			w.Ops = append(w.Ops, graft.Op{Kind: graft.DropVertexProps, ID: x, Keys: []string{prop}})
		}
		ws = append(ws, w)
	}
	return ws
}

// Two processes share the cache and the graph; every phase moves each key
// to the other process (as a rebalance does), and both run at once. The
// final graph equals the model, and ops are eliminated through the cache.
func TestConcurrentProcessesShareTheCache(t *testing.T) {
	srv := redistest.Start(t)
	rng := rand.New(rand.NewPCG(7, 7))
	ws := sharedWorkload(rng, 6000)
	want := model.New()
	for _, w := range ws {
		if err := want.ApplyBatch([]*graft.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	g := memgraph.New()
	sink := &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxWrites: 50, MaxUnits: 500, MaxBytes: 1 << 20, Concurrency: 4}}
	procs := []*instance{start(t, sink, open(t, srv.URL(1))), start(t, sink, open(t, srv.URL(1)))}
	procs[0].apply(t, ws[:1])
	const phases = 6
	per := (len(ws) - 1) / phases
	for ph := range phases {
		chunk := ws[1+ph*per : 1+(ph+1)*per]
		parts := [2][]*graft.Write{}
		for _, w := range chunk {
			i := (int(w.Key[1]-'0') + ph) % 2
			if len(w.Key) > 2 {
				i = (int(w.Key[2]-'0') + 1 + ph) % 2
			}
			parts[i] = append(parts[i], w)
		}
		var wg sync.WaitGroup
		for i, p := range procs {
			wg.Add(1)
			go func() { defer wg.Done(); p.apply(t, parts[i]) }()
		}
		wg.Wait()
	}
	rest := ws[1+phases*per:]
	procs[1].apply(t, rest)
	var eliminated int64
	for _, p := range procs {
		eliminated += p.stop(t).Eliminated
	}
	conformance.CheckModel(t, g, want)
	if eliminated == 0 {
		t.Fatal("no op was eliminated: the shared cache was not used")
	}
	t.Logf("%d ops eliminated", eliminated)
}

// A process restarted with a warm Redis eliminates what the previous one
// established (compared with the same replay against an empty Redis); Redis
// killed and restarted mid-stream: the cache is bypassed (nothing dropped
// because of it), recovers, and the graph equals the model.
func TestRestartAndRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = 10, 4, 20, 6
	seed, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := memgraph.New()
	sink := &memgraph.Sink{Graph: g}
	first := start(t, sink, open(t, srv.URL(2)))
	first.apply(t, seed.Writes)
	first.stop(t)
	// The final graph written again as writes: one per vertex and edge, every
	// op already applied.
	var replay []*graft.Write
	vs, es := seed.Model.Snapshot()
	for _, v := range vs {
		replay = append(replay, &graft.Write{Key: v.ID, Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: v.ID, Label: v.Label, Props: v.Props}}})
	}
	for _, e := range es {
		replay = append(replay, &graft.Write{Key: e.From, Ops: []graft.Op{{Kind: graft.UpsertEdge, ID: e.ID, Label: e.Label, From: e.From, To: e.To, Props: e.Props}}})
	}
	warm := start(t, sink, open(t, srv.URL(2)))
	warm.apply(t, replay)
	ws := warm.stop(t)
	cold := start(t, sink, open(t, srv.URL(4)))
	cold.apply(t, replay)
	cs := cold.stop(t)
	// Eliminated: known from the cache; coalesced: known from an earlier op
	// of the batch that was itself eliminated or applied.
	if ws.Eliminated+ws.Coalesced != ws.Ops || ws.Eliminated == 0 || cs.Eliminated != 0 || cs.Eliminated+cs.Coalesced >= cs.Ops/2 {
		t.Fatalf("replay after a restart: warm Redis %d eliminated + %d coalesced of %d ops; empty Redis %d + %d",
			ws.Eliminated, ws.Coalesced, ws.Ops, cs.Eliminated, cs.Coalesced)
	}
	t.Logf("replay: warm Redis %d eliminated + %d coalesced of %d ops (none reached the graph); empty Redis %d + %d",
		ws.Eliminated, ws.Coalesced, ws.Ops, cs.Eliminated, cs.Coalesced)
	conformance.CheckModel(t, g, seed.Model)

	rng := rand.New(rand.NewPCG(3, 9))
	ws2 := sharedWorkload(rng, 3000)
	want := model.New()
	for _, w := range ws2 {
		if err := want.ApplyBatch([]*graft.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	// Outage: a fresh graph, Redis killed a third of the way, back at two thirds.
	g2 := memgraph.New()
	sink2 := &memgraph.Sink{Graph: g2, Lim: graft.SinkLimits{MaxWrites: 20, MaxUnits: 200, MaxBytes: 1 << 20, Concurrency: 2}}
	r := open(t, srv.URL(3))
	in := start(t, sink2, r)
	third := len(ws2) / 3
	in.apply(t, ws2[:third])
	srv.Kill()
	in.apply(t, ws2[third:2*third])
	srv.Restart(t)
	time.Sleep(1100 * time.Millisecond) // the engine retries the cache once a second
	in.apply(t, ws2[2*third:])
	st := in.stop(t)
	wv, we := want.Snapshot()
	gv, ge := g2.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("after the outage the graph differs from the model:\n%s", d)
	}
	if st.CacheErrors == 0 {
		t.Fatal("the outage went unnoticed")
	}
	if err := r.Ping(context.Background()); err != nil {
		t.Fatalf("client did not reconnect: %v", err)
	}
	t.Logf("outage: %d cache errors, %d ops eliminated", st.CacheErrors, st.Eliminated)
}

func TestParseURL(t *testing.T) {
	ro, o, err := rediscache.ParseURL("rediss://u:secret@host:6380/2?prefix=g1:&ttl=1h")
	if err != nil {
		t.Fatal(err)
	}
	if ro.Addr != "host:6380" || ro.DB != 2 || ro.Password != "secret" || ro.Username != "u" || ro.TLSConfig == nil || o.Prefix != "g1:" || o.TTL != time.Hour {
		t.Fatalf("parsed %+v %+v", ro, o)
	}
	for raw, want := range map[string]string{
		"memcached://h":        "want redis://",
		"redis://h/0?ttl=-1s":  "ttl=",
		"redis://h/0?pefix=x":  `unknown parameter "pefix"`,
		"redis://h/notanumber": "invalid database",
	} {
		if _, _, err := rediscache.ParseURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", raw, want, err)
		}
	}
}

// The race behind a rare loss in TestConcurrentProcessesShareTheCache: A
// loads x's fact {p3: 0} and plans; B begins, writes p3 = 1, publishes and
// finishes; then A begins, alone, and published its plan's view — x.p3 = 0,
// false — after which an upsert of p3 = 0 was eliminated and lost. A batch
// planned with a fact is now alone only if that fact is still the one
// stored; one planned without any fact knows only what it wrote itself.
func TestFactPlannedBeforeAnotherBatchIsNotPublished(t *testing.T) {
	srv := redistest.Start(t)
	c := open(t, srv.URL(5))
	ctx := context.Background()
	x := "v\x00x" // the cache key of vertex x
	fact := func(p3 int64) []*graft.SharedFact {
		return []*graft.SharedFact{{Label: "thing", Props: graft.Props{"p3": graft.Int(p3)}}}
	}
	load := func() *graft.SharedFact {
		t.Helper()
		l, err := c.Load(ctx, []string{x}, []uint64{0})
		if err != nil {
			t.Fatal(err)
		}
		return l.Facts[0]
	}
	begin := func(planned uint64) graft.SharedTicket {
		t.Helper()
		tk, err := c.Begin(ctx, []string{x}, []uint64{planned}, false)
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.Load(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		tk.Epoch = l.Epoch
		return tk
	}
	// x.p3 = 0, published.
	if err := c.Publish(ctx, begin(0), fact(0)); err != nil {
		t.Fatal(err)
	}
	seen := load()
	if seen == nil || !seen.Props["p3"].Equal(graft.Int(0)) {
		t.Fatalf("the first fact was not stored: %+v", seen)
	}
	// B: begins after A's load, sets p3 = 1, publishes.
	if err := c.Publish(ctx, begin(seen.Version), fact(1)); err != nil {
		t.Fatal(err)
	}
	// A: planned with the first fact, begins now that B is done.
	a := begin(seen.Version)
	if a.Alone[0] {
		t.Fatal("A is alone although B began writing x after the fact A planned with")
	}
	if err := c.Publish(ctx, a, fact(0)); err != nil {
		t.Fatal(err)
	}
	if f := load(); f != nil && f.Props["p3"].Equal(graft.Int(0)) {
		t.Fatalf("x.p3 = 0 is stored, but B set it to 1: %+v", f)
	}
}
