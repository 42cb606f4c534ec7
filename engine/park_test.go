package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
)

// sinkOnly hides the memgraph sink's reader: the engine cannot ask which
// endpoint a parked write misses.
type sinkOnly struct{ graft.Sink }

// runWithin runs the engine until the source is done, failing the test if
// it has not finished after d (a stall: the cases here finish in a few
// ParkFor).
func runWithin(t *testing.T, d time.Duration, sink graft.Sink, dlq graft.DeadLetters, src graft.Source, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(sink, dlq, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := e.Run(ctx, src); err != nil {
		t.Fatalf("Run: %v (stats %+v)", err, e.Stats().Snapshot())
	}
	if ctx.Err() != nil {
		t.Fatalf("still running after %v: stalled (stats %+v)", d, e.Stats().Snapshot())
	}
	return e
}

// heldUntil holds every batch that touches vertex "slow" until release is
// closed: the writes behind it stay pending.
type heldUntil struct {
	*memgraph.Sink
	release chan struct{}
}

func (h *heldUntil) Apply(ctx context.Context, b *graft.Batch) error {
	for _, w := range b.Writes {
		for _, op := range w.Ops {
			if op.ID == "slow" {
				select {
				case <-h.release:
				case <-ctx.Done():
					return graft.NewError(graft.Transient, ctx.Err())
				}
			}
		}
	}
	return h.Sink.Apply(ctx, b)
}

// releasingDLQ closes release once a letter for write id arrives.
type releasingDLQ struct {
	memDLQ
	id      string
	release chan struct{}
	once    sync.Once
}

func (d *releasingDLQ) Append(ctx context.Context, ls []*graft.Letter) error {
	for _, l := range ls {
		if l.WriteID == d.id {
			d.once.Do(func() { close(d.release) })
		}
	}
	return d.memDLQ.Append(ctx, ls)
}

// A parked write that also links to a vertex that exists waits only for
// its missing endpoint: pending writes of other keys that upsert the one
// that exists bring it nothing. Before, p1 (edge s0→never) waited as long
// as any write upserting s0 was pending; here c1 upserts s0 behind q, which
// the sink holds until p1 is given up on: that stalled for good. The
// engine now asks the sink's reader which endpoints are missing.
func TestParkedWriteWaitsOnlyForItsMissingEndpoint(t *testing.T) {
	release := make(chan struct{})
	lim := testLimits
	lim.MaxWrites = 1 // p1 never in q's batch
	mem := &memgraph.Sink{Graph: memgraph.New(), Lim: lim}
	w0, _ := graft.Decode([]byte(`{"id":"w0","key":"z","ops":[{"op":"upsertVertex","id":"s0","label":"s"}]}`), "", graft.DefaultLimits)
	if err := mem.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w0}}); err != nil {
		t.Fatal(err)
	}
	dlq := &releasingDLQ{id: "p1", release: release}
	ls := lines(
		`{"id":"p1","key":"a","ops":[{"op":"upsertEdge","label":"to","from":"s0","to":"never"}]}`,
		`{"id":"q","key":"b","ops":[{"op":"upsertVertex","id":"slow","label":"s"}]}`,
		`{"id":"c1","key":"c","ops":[{"op":"upsertVertex","id":"slow","label":"s","props":{"p":1}},{"op":"upsertVertex","id":"s0","label":"s","props":{"p":1}}]}`,
	)
	runWithin(t, time.Minute, &heldUntil{Sink: mem, release: release}, dlq, newSliceSource(t, ls, 1, nil), testConfig())
	got := dlq.byID()
	if l := got["p1"]; l == nil || l.Class != graft.MissingEndpoint.String() || len(got) != 1 {
		t.Fatalf("dead letters %v, want p1's alone (missing_endpoint)", got)
	}
	conformance.CheckExport(t, mem.Graph, `{"type":"vertex","id":"s0","label":"s","props":{"p":1}}
{"type":"vertex","id":"slow","label":"s","props":{"p":1}}`)
}

// Writes whose missing endpoint never comes are given up on after ParkFor,
// even when a write that upserts their other endpoint is pending:
//
//   - behind the parked write in its own key (w2 upserts s0, which w1 links
//     to): it cannot run before w1, so it brings w1 nothing;
//   - behind another parked write, in a cycle: p1 (key a) and p2 (key b)
//     link s0 and s1 to vertices that never come; c1 behind p2 upserts s0,
//     c2 behind p1 upserts s1. Each waited for the other's key forever.
//
// Both stalled the engine for good (a random workload with vertices deleted
// for good showed it). With the sink's reader, the engine asks which
// endpoint is missing; without one, a write behind a parked write counts
// only while that one is within its first ParkFor.
func TestParkedWritesThatCanNeverApplyAreGivenUp(t *testing.T) {
	const seed = `{"id":"w0","key":"z","ops":[{"op":"upsertVertex","id":"s0","label":"s"},{"op":"upsertVertex","id":"s1","label":"s"}]}`
	cases := []struct {
		name, want string
		lines      []string
		dead       []string
	}{
		{"behind its own key", `{"type":"vertex","id":"s0","label":"s","props":{"p":2}}
{"type":"vertex","id":"s1","label":"s","props":{}}`, lines(
			`{"id":"w1","key":"a","ops":[{"op":"upsertEdge","label":"to","from":"s0","to":"never"}]}`,
			`{"id":"w2","key":"a","ops":[{"op":"upsertVertex","id":"s0","label":"s","props":{"p":2}}]}`,
		), []string{"w1"}},
		{"a cycle of two keys", `{"type":"vertex","id":"s0","label":"s","props":{"p":1}}
{"type":"vertex","id":"s1","label":"s","props":{"p":2}}`, lines(
			`{"id":"p1","key":"a","ops":[{"op":"upsertEdge","label":"to","from":"s0","to":"never1"}]}`,
			`{"id":"p2","key":"b","ops":[{"op":"upsertEdge","label":"to","from":"s1","to":"never2"}]}`,
			`{"id":"c1","key":"b","ops":[{"op":"upsertVertex","id":"s0","label":"s","props":{"p":1}}]}`,
			`{"id":"c2","key":"a","ops":[{"op":"upsertVertex","id":"s1","label":"s","props":{"p":2}}]}`,
		), []string{"p1", "p2"}},
	}
	for _, c := range cases {
		for _, reader := range []bool{true, false} {
			name := c.name + map[bool]string{true: ", the sink's reader asked", false: ", no reader, no cache"}[reader]
			t.Run(name, func(t *testing.T) {
				mem := &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}
				w0, _ := graft.Decode([]byte(seed), "", graft.DefaultLimits)
				if err := mem.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w0}}); err != nil {
					t.Fatal(err)
				}
				var sink graft.Sink = mem
				cfg := testConfig()
				if !reader {
					sink, cfg.CacheSize = sinkOnly{mem}, -1
				}
				dlq := &memDLQ{}
				e := runWithin(t, time.Minute, sink, dlq, newSliceSource(t, c.lines, 1, nil), cfg)
				got := dlq.byID()
				for _, id := range c.dead {
					if l := got[id]; l == nil || l.Class != graft.MissingEndpoint.String() {
						t.Errorf("%s: dead letter %+v, want missing_endpoint", id, l)
					}
				}
				if len(got) != len(c.dead) {
					t.Errorf("%d dead letters, want %d", len(got), len(c.dead))
				}
				conformance.CheckExport(t, mem.Graph, c.want)
				if n := e.Stats().Committed.Load(); n != int64(len(c.lines)-len(c.dead)) {
					t.Errorf("%d committed, want %d", n, len(c.lines)-len(c.dead))
				}
			})
		}
	}
}
