package engine_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/workload"
)

// Killed at random points many times, an engine restarts every partition
// from its own acknowledged position, so writes of different keys that
// share elements (the workload's hot vertices, in four partitions by key)
// are re-applied in another relative order than the first time — and the
// partitions are read at different speeds, so even the first time they
// arrive out of version order. With versions, the final graph is the
// model's: the writes applied one at a time in version order. (The same
// runs on the stores that guard versions: sink/postgres.)
func TestRestartAcrossPartitionsWithVersions(t *testing.T) {
	wl := workload.Random(t, 13, 4000, 30, 50)
	lines := workload.WithVersions(wl.Lines)
	sink := newFaultySink(t, 13, testLimits)
	sink.pTransient, sink.pInDoubt = 0.05, 0.05
	dlq := &memDLQ{}
	// The stable and mortal vertices first (the workload's first 75
	// writes), as the model has them before any write links to them.
	prefix := 50 + 25
	run(t, sink, dlq, workload.NewPartitioned(t, lines[:prefix], 4, 0, nil), testConfig())
	workload.CrashAndRestart(t, sink, dlq, testConfig(), lines[prefix:], 4, 300, 10, 13, func() {
		sink.mu.Lock()
		clear(sink.lastSeq) // a restart replays: order is checked per run
		sink.mu.Unlock()
	})
	checkOutcome(t, wl, sink.Graph, dlq)
}

// The write cache must not eliminate a versioned op: the sink would not
// record its version. v.p = 1 at version 5 is cached; v.p = 1 at version 9
// looks like a no-op; v.p = 2 at version 7, arriving late (another
// partition), is older than 9 and must be skipped — but only a sink that
// saw version 9 knows that.
func TestVersionedWritesAreNeverEliminated(t *testing.T) {
	mem := newFaultySink(t, 1, testLimits)
	src := &feedSource{steps: make(chan []graft.Record, 1)}
	e, err := engine.New(mem, &memDLQ{}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background(), src) }()
	for i, w := range []struct {
		key            string
		version, value int
	}{{"a", 5, 1}, {"a", 9, 1}, {"b", 7, 2}} {
		src.steps <- []graft.Record{{Pos: graft.Position{Partition: w.key, Offset: int64(i + 1)},
			Value: []byte(`{"id":"w` + strconv.Itoa(i+1) + `","key":"` + w.key + `","version":` + strconv.Itoa(w.version) +
				`,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":` + strconv.Itoa(w.value) + `}}]}`)}}
		waitCommitted(t, e, int64(i+1), done)
	}
	close(src.steps)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	v, err := mem.Graph.Vertex(context.Background(), "v")
	if err != nil || !v.Props["p"].Equal(graft.Int(1)) {
		t.Fatalf("v = %+v %v, want p = 1 (version 9's value)", v, err)
	}
	if st := e.Stats().Snapshot(); st.Eliminated != 0 {
		t.Fatalf("%d ops eliminated, want none of a versioned write", st.Eliminated)
	}
}

// versionedFeed is a feedSource that derives versions (graft.Versioner).
type versionedFeed struct{ feedSource }

func (*versionedFeed) VersionOrder() string { return "the test's" }

// With DeriveVersions, a write without a version takes its record's; one
// with a version keeps it. Here a newer record of one partition is applied
// before an older one of another: the older one's value does not win.
// Without, the last applied wins; and a source that derives no versions
// is refused.
func TestDerivedVersions(t *testing.T) {
	for _, derive := range []bool{true, false} {
		sink := newFaultySink(t, 1, testLimits)
		src := &versionedFeed{feedSource{steps: make(chan []graft.Record, 1)}}
		cfg := testConfig()
		cfg.DeriveVersions = derive
		e, err := engine.New(sink, &memDLQ{}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- e.Run(context.Background(), src) }()
		for i, r := range []struct {
			partition      string
			derived, value int
			own            string
		}{{"a", 20, 1, ""}, {"b", 10, 2, ""}, {"b", 5, 3, `"version":30,`}, {"a", 25, 4, ""}} {
			src.steps <- []graft.Record{{Pos: graft.Position{Partition: r.partition, Offset: int64(i + 1)}, Version: int64(r.derived),
				Value: []byte(`{` + r.own + `"id":"w` + strconv.Itoa(i+1) + `","key":"` + r.partition + `","ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p` + strconv.Itoa(i) + `":` + strconv.Itoa(r.value) + `,"q":` + strconv.Itoa(r.value) + `}}]}`)}}
			waitCommitted(t, e, int64(i+1), done)
		}
		close(src.steps)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		v, err := sink.Graph.Vertex(context.Background(), "v")
		if err != nil {
			t.Fatal(err)
		}
		// q: set by all four; with versions 20, 10, 30 (its own), 25, the
		// third wins; without, the last.
		want := int64(4)
		if derive {
			want = 3
		}
		if got := v.Props["q"]; !got.Equal(graft.Int(want)) {
			t.Fatalf("derive %v: q = %v, want %d", derive, got, want)
		}
	}
	e, err := engine.New(newFaultySink(t, 1, testLimits), &memDLQ{}, engine.Config{DeriveVersions: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background(), &feedSource{steps: make(chan []graft.Record)}); err == nil || !strings.Contains(err.Error(), "derives no versions") {
		t.Fatalf("DeriveVersions with a source that derives none: %v", err)
	}
}
