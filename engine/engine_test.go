package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/workload"
	"github.com/graftdb/graft/semantics"
)

func testConfig() engine.Config {
	c := engine.Default()
	c.BackoffBase = time.Millisecond
	c.BackoffMax = 5 * time.Millisecond
	c.ParkDelay = 5 * time.Millisecond
	c.ParkFor = 200 * time.Millisecond
	c.Linger = time.Millisecond
	return c
}

var testLimits = graft.SinkLimits{MaxUnits: 200, MaxBytes: 1 << 20, MaxWrites: 50, Concurrency: 4}

// run runs the engine until the source is done; a run still going after
// two minutes is a stall (the cases finish in seconds).
func run(t *testing.T, sink graft.Sink, dlq graft.DeadLetters, src graft.Source, cfg engine.Config) *engine.Engine {
	t.Helper()
	return runWithin(t, 2*time.Minute, sink, dlq, src, cfg)
}

// checkOutcome compares the final graph with the model and the dead letters
// with the writes the model rejected.
func checkOutcome(t *testing.T, wl *workload.Workload, g *semantics.Graph, dlq *memDLQ) {
	t.Helper()
	conformance.CheckModel(t, g, wl.Model)
	wl.CheckLetters(t, dlq.all())
}

// Invariants 1–5 and 8 under random transient, conflict, in-doubt and
// permanent failures, some of which the sink cannot attribute to a write.
func TestInvariantsUnderFaults(t *testing.T) {
	for _, tc := range []struct {
		name                                           string
		seed                                           uint64
		keys, stable                                   int
		pTransient, pConflict, pInDoubt, pUnattributed float64
		cache                                          int
	}{
		{"no faults", 1, 20, 40, 0, 0, 0, 0, 0},
		{"transient and conflicts", 2, 20, 40, 0.15, 0.15, 0, 0, 0},
		{"in-doubt commits are replayed", 3, 10, 30, 0.05, 0.05, 0.15, 0, 0},
		{"unattributed failures are bisected", 4, 50, 60, 0.05, 0.1, 0.05, 0.7, 0},
		{"hot vertices, few keys, no cache", 5, 3, 8, 0.1, 0.1, 0.05, 0.3, -1},
		{"many keys", 6, 400, 300, 0.05, 0.05, 0.05, 0.2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wl := workload.Random(t, tc.seed, 3000, tc.keys, tc.stable)
			sink := newFaultySink(t, tc.seed, testLimits)
			sink.pTransient, sink.pConflict, sink.pInDoubt, sink.pUnattributed = tc.pTransient, tc.pConflict, tc.pInDoubt, tc.pUnattributed
			dlq := &memDLQ{}
			src := newSliceSource(t, wl.Lines, 3, nil)
			cfg := testConfig()
			cfg.CacheSize = tc.cache
			e := run(t, sink, dlq, src, cfg)
			checkOutcome(t, wl, sink.Graph, dlq)
			st := e.Stats().Snapshot()
			if st.Committed+st.DeadLetters != int64(len(wl.Lines)) {
				t.Errorf("committed %d + dead letters %d != %d writes", st.Committed, st.DeadLetters, len(wl.Lines))
			}
			for p, last := range map[string]int64{"p0": 1000, "p1": 1000, "p2": 1000} {
				if got := src.acked()[p]; got != last {
					t.Errorf("partition %s acknowledged up to %d, want %d", p, got, last)
				}
			}
			if tc.pConflict > 0 && st.Conflicts == 0 {
				t.Errorf("no conflict was retried")
			}
			if tc.pUnattributed > 0 && st.Bisections == 0 {
				t.Errorf("no batch was bisected")
			}
			t.Logf("%+v max concurrent batches %d", st, sink.maxConcurrent)
		})
	}
}

// Invariants 2 and 3: stop the engine abruptly (a drain deadline too short
// for the work in flight, as after kill -9), restart from the acknowledged
// position, and the graph still equals the model.
//
// One partition: writes of different keys that touch the same element keep
// their relative order on replay only within a partition (see
// docs/ARCHITECTURE.md, "Replay across partitions").
func TestRestartFromAcknowledgedPositions(t *testing.T) {
	wl := workload.Random(t, 11, 4000, 30, 50)
	sink := newFaultySink(t, 11, testLimits)
	sink.pTransient = 0.1
	dlq := &memDLQ{}
	from := map[string]int64{}
	for round := 0; ; round++ {
		src := newSliceSource(t, wl.Lines, 1, from)
		cfg := testConfig()
		cfg.DrainTimeout = time.Millisecond
		e, err := engine.New(sink, dlq, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if round < 5 {
			go func() {
				for e.Stats().Committed.Load() < int64(300*(round+1)) {
					time.Sleep(100 * time.Microsecond)
				}
				cancel()
			}()
		}
		err = e.Run(ctx, src)
		cancel()
		if err != nil && !errors.Is(err, engine.ErrDrainTimeout) {
			t.Fatalf("round %d: %v", round, err)
		}
		for p, off := range src.acked() {
			if off < from[p] {
				t.Fatalf("partition %s went back from %d to %d", p, from[p], off)
			}
			from[p] = off
		}
		sink.mu.Lock()
		clear(sink.lastSeq) // a restart replays: order is checked per run
		sink.mu.Unlock()
		if err == nil && round >= 5 {
			break
		}
		if round > 50 {
			t.Fatal("never finished")
		}
	}
	checkOutcome(t, wl, sink.Graph, dlq)
}

func lines(ss ...string) []string { return ss }

// A write whose edge names a vertex that a later write (of another key)
// creates is parked, and commits once the vertex exists; one whose vertex
// never comes is dead-lettered as a missing endpoint once ParkFor is over.
func TestMissingEndpointIsParked(t *testing.T) {
	sink := newFaultySink(t, 1, testLimits)
	dlq := &memDLQ{}
	src := newSliceSource(t, lines(
		`{"id":"w1","key":"a","ops":[{"op":"upsertVertex","id":"d1","label":"device"}]}`,
		`{"id":"w2","key":"a","ops":[{"op":"upsertEdge","label":"installed","from":"d1","to":"s1"}]}`,
		`{"id":"w3","key":"a","ops":[{"op":"upsertVertex","id":"d1","label":"device","props":{"after":true}}]}`,
		`{"id":"w4","key":"b","ops":[{"op":"upsertVertex","id":"s1","label":"software"}]}`,
		`{"id":"w5","key":"c","ops":[{"op":"upsertEdge","label":"installed","from":"d1","to":"never"}]}`,
	), 1, nil)
	e := run(t, sink, dlq, src, testConfig())
	conformance.CheckExport(t, sink.Graph, `{"type":"vertex","id":"d1","label":"device","props":{"after":true}}
{"type":"vertex","id":"s1","label":"software","props":{}}
{"type":"edge","label":"installed","from":"d1","to":"s1","props":{}}`)
	got := dlq.byID()
	if len(got) != 1 || got["w5"] == nil || got["w5"].Class != "missing_endpoint" || !strings.Contains(got["w5"].Error, `"never"`) {
		t.Fatalf("dead letters: %+v, want only w5 as a missing endpoint naming \"never\"", got)
	}
	if e.Stats().Parked.Load() == 0 {
		t.Fatal("nothing was parked")
	}
	// Per-key order held: w3 (key a) committed after the parked w2.
	if sink.lastSeq["a"] != 3 {
		t.Fatalf("last committed write of key a: w%d, want w3", sink.lastSeq["a"])
	}
}

// Under the quarantine policy, the writes of a key after a dead letter are
// dead-lettered too; other keys go on.
func TestQuarantinePolicy(t *testing.T) {
	sink := newFaultySink(t, 1, testLimits)
	dlq := &memDLQ{}
	src := newSliceSource(t, lines(
		`{"id":"w1","key":"a","ops":[{"op":"upsertVertex","id":"v","label":"device"}]}`,
		`{"id":"w2","key":"a","ops":[{"op":"upsertVertex","id":"v","label":"software"}]}`,
		`{"id":"w3","key":"a","ops":[{"op":"upsertVertex","id":"v","label":"device","props":{"x":1}}]}`,
		`{"id":"w4","key":"b","ops":[{"op":"upsertVertex","id":"u","label":"device"}]}`,
		`{"id":"w5","key":"a","ops":[{"op":"upsertVertex","id":"z","label":"device"}]}`,
	), 1, nil)
	cfg := testConfig()
	cfg.Policy = engine.Quarantine
	run(t, sink, dlq, src, cfg)
	conformance.CheckExport(t, sink.Graph, `{"type":"vertex","id":"v","label":"device","props":{}}
{"type":"vertex","id":"u","label":"device","props":{}}`)
	got := dlq.byID()
	want := map[string]string{"w2": "permanent", "w3": "quarantined", "w5": "quarantined"}
	if len(got) != len(want) {
		t.Fatalf("dead letters %v, want %v", keys(got), want)
	}
	for id, class := range want {
		if got[id] == nil || got[id].Class != class {
			t.Errorf("%s: got %+v, want class %s", id, got[id], class)
		}
	}
}

func keys(m map[string]*graft.Letter) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// Bad input of every kind is dead-lettered with a reason naming the field;
// nothing else is disturbed.
func TestBadInput(t *testing.T) {
	good := func(id string) string {
		return `{"id":"` + id + `","ops":[{"op":"upsertVertex","id":"` + id + `","label":"ok"}]}`
	}
	bad := []struct{ line, want string }{
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x"}`, "malformed JSON"},
		{`[{"op":"upsertVertex","id":"a","label":"x"}]`, "must be a JSON object, not an array"},
		{`42`, "must be a JSON object, not a number"},
		{`"text"`, "must be a JSON object, not a string"},
		{`{"ops":[{"op":"upsertVertexx","id":"a","label":"x"}]}`, `ops[0].op: unknown op "upsertVertexx"`},
		{`{"ops":[{"op":"upsertVertex","label":"x"}]}`, "ops[0].id: missing"},
		{`{"ops":[{"op":"upsertVertex","id":"a"}]}`, "ops[0].label: missing"},
		{`{"ops":[{"op":"upsertEdge","label":"e","from":"a"}]}`, "ops[0].to: missing"},
		{`{"ops":[{"op":"upsertVertex","id":7,"label":"x"}]}`, "ops[0].id: must be a string, not number"},
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"n":{"deep":1}}}]}`, "ops[0].props.n: an object is not a property value"},
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"n":[1,2]}}]}`, "ops[0].props.n: an array is not a property value"},
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"n":null}}]}`, "ops[0].props.n: null is not a property value"},
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"n":99999999999999999999}}]}`, "ops[0].props.n: integer 99999999999999999999 is out of int64 range"},
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":"flat"}]}`, "ops[0].props: must be an object"},
		{`{"ops":[{"op":"upsertVertex","id":"a","label":"x","prop":{}}]}`, `ops[0].prop: unknown field`},
		{`{"ops":[]}`, "ops: empty"},
		{`{"key":"k"}`, "ops: missing"},
		{`{"key":5,"ops":[{"op":"deleteVertex","id":"a"}]}`, "key: must be a string, not a number"},
		{`{"ops":[{"op":"replaceEdges","from":"a","label":"l","to":"b"}]}`, "ops[0].to: must be an array"},
		{`{"ops":[{"op":"replaceEdges","from":"a","label":"l","to":["b",3]}]}`, "ops[0].to[1]: must be a string"},
		{`{"ops":[{"op":"dropProps","id":"a","keys":["x"]}]}`, "ops[0].element: missing"},
		{`{"ops":[{"op":"dropProps","element":"vertex","id":"a","keys":[1]}]}`, "ops[0].keys"},
		{`{"version":"x","ops":[{"op":"deleteVertex","id":"a"}]}`, "version: must be a non-negative integer"},
		{"{\"ops\":[{\"op\":\"deleteVertex\",\"id\":\"\xff\xfe\"}]}", "not valid UTF-8"},
		{`{"ops":[{"op":"upsertVertex","id":"big","label":"x","props":{"s":"` + strings.Repeat("x", 2000) + `"}}]}`, "over the limit of 1024 bytes"},
		{`{"ops":[` + strings.Repeat(`{"op":"deleteVertex","id":"a"},`, 20) + `{"op":"deleteVertex","id":"a"}]}`, "ops: 21 ops, over the limit of 20"},
	}
	var in []string
	for i, b := range bad {
		in = append(in, good("g"+string(rune('a'+i))), b.line)
	}
	sink := newFaultySink(t, 1, testLimits)
	dlq := &memDLQ{}
	cfg := testConfig()
	cfg.Limits = graft.Limits{MaxRecordBytes: 1024, MaxOps: 20}
	e := run(t, sink, dlq, newSliceSource(t, in, 1, nil), cfg)
	if n := e.Stats().Committed.Load(); n != int64(len(bad)) {
		t.Errorf("committed %d writes, want the %d good ones", n, len(bad))
	}
	vs, _ := sink.Graph.Snapshot()
	if len(vs) != len(bad) {
		t.Errorf("graph holds %d vertices, want %d", len(vs), len(bad))
	}
	if len(dlq.letters) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dlq.letters), len(bad))
	}
	byOffset := map[int64]*graft.Letter{}
	for _, l := range dlq.letters {
		byOffset[l.Position.Offset] = l
	}
	for i, b := range bad {
		l := byOffset[int64(2*i+2)]
		if l == nil {
			t.Errorf("%s: no dead letter at offset %d", b.line, 2*i+2)
			continue
		}
		if !strings.Contains(l.Error, b.want) || l.Class != "permanent" {
			t.Errorf("%.60s:\n got %s %q\nwant permanent containing %q", b.line, l.Class, l.Error, b.want)
		}
		raw, _ := l.Bytes()
		if string(raw) != b.line {
			t.Errorf("%.60s: raw record not kept verbatim: %.60q", b.line, raw)
		}
	}
}

// Writes that share a hot vertex go into the same batch rather than queueing
// in separate batches, and the cache eliminates repeated upserts.
func TestHotVertexBatchingAndElimination(t *testing.T) {
	var in []string
	in = append(in, `{"key":"sw","ops":[{"op":"upsertVertex","id":"chrome","label":"software","props":{"name":"chrome"}}]}`)
	for i := 0; i < 400; i++ {
		d := "d" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		in = append(in, `{"key":"`+d+`","ops":[{"op":"upsertVertex","id":"chrome","label":"software","props":{"name":"chrome"}},`+
			`{"op":"upsertVertex","id":"`+d+`","label":"device"},{"op":"upsertEdge","label":"installed","from":"`+d+`","to":"chrome"}]}`)
	}
	sink := newFaultySink(t, 1, graft.SinkLimits{MaxUnits: 10000, MaxWrites: 100, MaxBytes: 1 << 20, Concurrency: 4})
	dlq := &memDLQ{}
	e := run(t, sink, dlq, newSliceSource(t, in, 1, nil), testConfig())
	st := e.Stats().Snapshot()
	if st.Committed != 401 || st.DeadLetters != 0 {
		t.Fatalf("committed %d, dead %d", st.Committed, st.DeadLetters)
	}
	if st.InHotBatches == 0 {
		t.Errorf("no write joined a batch behind a conflicting write")
	}
	if st.Batches > 40 {
		t.Errorf("%d batches for 401 writes sharing one vertex, max 100 a batch: they queued instead of batching", st.Batches)
	}
	if st.Eliminated+st.Coalesced < 390 {
		t.Errorf("eliminated %d + coalesced %d of the 400 repeated upserts of the hot vertex", st.Eliminated, st.Coalesced)
	}
	es, _ := sink.Graph.Edges(context.Background(), "chrome", graft.In, "installed")
	if len(es) != 400 {
		t.Errorf("%d installed edges, want 400", len(es))
	}
}

// A fatal error stops the engine with a clear message and acknowledges
// nothing that was not committed.
func TestFatalStops(t *testing.T) {
	sink := &fatalSink{Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}}
	src := newSliceSource(t, lines(`{"ops":[{"op":"upsertVertex","id":"a","label":"x"}]}`), 1, nil)
	e, _ := engine.New(sink, &memDLQ{}, testConfig())
	err := e.Run(context.Background(), src)
	var fe *engine.FatalError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("Run = %v, want a fatal error naming the cause", err)
	}
	if len(src.acked()) != 0 {
		t.Fatalf("acknowledged %v after a fatal error", src.acked())
	}
}

type fatalSink struct{ *memgraph.Sink }

func (f *fatalSink) Apply(context.Context, *graft.Batch) error {
	return graft.NewError(graft.Fatal, errors.New("password authentication failed for user graft"))
}

// A graceful stop does not wait for parked writes: they are not
// acknowledged and come back after the restart.
func TestStopWithParkedWrite(t *testing.T) {
	sink := newFaultySink(t, 1, testLimits)
	src := newSliceSource(t, lines(
		`{"id":"w1","key":"a","ops":[{"op":"upsertVertex","id":"d1","label":"device"}]}`,
		`{"id":"w2","key":"a","ops":[{"op":"upsertEdge","label":"installed","from":"d1","to":"later"}]}`,
		`{"id":"w3","key":"b","ops":[{"op":"upsertVertex","id":"x","label":"device"}]}`,
	), 1, nil)
	cfg := testConfig()
	cfg.ParkFor = time.Hour
	e, _ := engine.New(sink, &memDLQ{}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.Stats().Parked.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	if err := e.Run(ctx, src); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stop took %v", d)
	}
	if got := src.acked()["p0"]; got != 1 {
		t.Fatalf("acknowledged up to %d, want 1 (w2 is parked, w3 after it)", got)
	}
	if e.Stats().Committed.Load() != 2 {
		t.Fatalf("committed %d, want w1 and w3", e.Stats().Committed.Load())
	}
}

// A record the source lost (graft.Record.Lost) is dead-lettered with class
// lost and its text, counted, and acknowledged in its place; the records
// around it are applied as usual.
func TestLostRecordsAreDeadLettered(t *testing.T) {
	sink := newFaultySink(t, 1, testLimits)
	dlq := &memDLQ{}
	src := newSliceSource(t, lines(
		`{"id":"w1","key":"a","ops":[{"op":"upsertVertex","id":"v1","label":"x"}]}`,
		`lost`,
		`{"id":"w3","key":"a","ops":[{"op":"upsertVertex","id":"v3","label":"x"}]}`,
	), 1, nil)
	src.recs[1] = graft.Record{Pos: src.recs[1].Pos, Ref: "2-2", Lost: "stream sequence 2 cannot be read"}
	e := run(t, sink, dlq, src, testConfig())
	conformance.CheckExport(t, sink.Graph, `{"type":"vertex","id":"v1","label":"x","props":{}}
{"type":"vertex","id":"v3","label":"x","props":{}}`)
	if len(dlq.letters) != 1 || dlq.letters[0].Class != graft.ClassLost || dlq.letters[0].Error != "stream sequence 2 cannot be read" ||
		dlq.letters[0].SourceRef != "2-2" || dlq.letters[0].Position.Offset != 2 {
		t.Fatalf("letters: %+v", dlq.letters)
	}
	if n := e.Stats().Lost.Load(); n != 1 {
		t.Fatalf("Lost %d, want 1", n)
	}
	if got := src.acked()["p0"]; got != 3 {
		t.Fatalf("acknowledged up to %d, want 3", got)
	}
}
