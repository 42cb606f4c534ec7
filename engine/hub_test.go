package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
)

// hubWorkload is n writes where write i upserts s_i and an edge to the hub
// s_(i - i mod hub), which write i - i mod hub (key k0) creates; every hub
// write arrives displace positions late. It returns the lines in arrival
// order and the model of the final graph.
func hubWorkload(t testing.TB, n, hub, displace int) ([]string, *model.Graph) {
	write := func(i int) string {
		h := i - i%hub
		return fmt.Sprintf(`{"key":"k%d","id":"w%d","ops":[{"op":"upsertVertex","id":"s%d","label":"s","props":{"i":%d}},{"op":"upsertEdge","label":"to","from":"s%d","to":"s%d"}]}`,
			i%hub, i, i, i, i, h)
	}
	want := model.New()
	for i := range n {
		w, err := graft.Decode([]byte(write(i)), "", graft.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := want.ApplyWrite(w); err != nil {
			t.Fatal(err)
		}
	}
	var arrival []int
	late := map[int][]int{} // position → hub writes arriving there
	for i := range n {
		if i%hub == 0 && displace > 0 {
			p := min(i+displace+1, n-1) // after a dependent of a later hub
			late[p] = append(late[p], i)
		} else {
			arrival = append(arrival, i)
		}
		arrival = append(arrival, late[i]...)
	}
	lines := make([]string, 0, n)
	for _, i := range arrival {
		lines = append(lines, write(i))
	}
	if len(lines) != n {
		t.Fatalf("%d lines", len(lines))
	}
	return lines, want
}

// Hubs that arrive late: write i upserts s_i and an edge to the hub
// s_(i - i mod H), which write i - i mod H (another key) creates; every hub
// write reaches the engine far behind its dependents — further than the
// in-flight bound. The dependents park, and the writes of their keys wait
// behind them. Parked and waiting writes must not hold the budget the
// reader needs to reach the hubs (invariant 12): before, the reader stopped
// at the bound, the hubs were never read, and valid writes were
// dead-lettered as missing_endpoint after park_for.
func TestLateHubsDoNotStarveTheReader(t *testing.T) {
	const bound = 200
	lines, want := hubWorkload(t, 3000, 50, 3*bound)
	g := memgraph.New()
	dlq := &memDLQ{}
	cfg := engine.Default()
	cfg.MaxInflightRecords = bound
	cfg.ParkDelay, cfg.ParkFor = 5*time.Millisecond, 2*time.Second
	cfg.BackoffBase, cfg.BackoffMax = time.Millisecond, 10*time.Millisecond
	e, err := engine.New(&memgraph.Sink{Graph: g, Lim: testLimits}, dlq, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.Run(ctx, newSliceSource(t, lines, 1, nil)); err != nil {
		t.Fatal(err)
	}
	if len(dlq.letters) > 0 {
		t.Fatalf("%d valid writes dead-lettered, the first: %s", len(dlq.letters), dlq.letters[0].Error)
	}
	conformance.CheckModel(t, g, want)
	st := e.Stats().Snapshot()
	t.Logf("%d writes in %d batches; %d parkings", st.Committed, st.Batches, st.Parked)
}

// A write whose endpoint nobody creates is dead-lettered after park_for,
// even when the write upserts its other endpoint itself (that vertex is not
// "on its way": it is the write's own).
func TestOrphanEdgeDeadLettered(t *testing.T) {
	lines := []string{`{"id":"orphan","key":"k","ops":[{"op":"upsertVertex","id":"d1","label":"device"},{"op":"upsertEdge","label":"installed","from":"d1","to":"sw:later"}]}`}
	dlq := &memDLQ{}
	cfg := engine.Default()
	cfg.ParkDelay, cfg.ParkFor = 2*time.Millisecond, 20*time.Millisecond
	e, err := engine.New(&memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}, dlq, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Run(ctx, newSliceSource(t, lines, 1, nil)); err != nil {
		t.Fatal(err)
	}
	if l := dlq.byID()["orphan"]; l == nil || l.Class != graft.MissingEndpoint.String() {
		t.Fatalf("the orphan was not dead-lettered as missing_endpoint: %+v", dlq.letters)
	}
}

// BenchmarkLateHubs: the same writes with hubs in order and with every hub
// three in-flight bounds late (issue 17's target: within 0.5x). Compare the
// two sub-benchmarks' ns/op.
func BenchmarkLateHubs(b *testing.B) {
	for _, late := range []bool{false, true} {
		b.Run(fmt.Sprintf("late=%v", late), func(b *testing.B) {
			displace := 0
			if late {
				displace = 600
			}
			lines, _ := hubWorkload(b, 6000, 50, displace)
			cfg := engine.Default()
			cfg.MaxInflightRecords = 200
			cfg.ParkDelay, cfg.ParkFor = 5*time.Millisecond, 30*time.Second
			for b.Loop() {
				dlq := &memDLQ{}
				e, err := engine.New(&memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}, dlq, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Run(context.Background(), newSliceSource(b, lines, 1, nil)); err != nil {
					b.Fatal(err)
				}
				if len(dlq.letters) > 0 {
					b.Fatalf("%d dead letters", len(dlq.letters))
				}
			}
			b.ReportMetric(float64(len(lines)*b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}
