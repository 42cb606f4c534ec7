package gremlin

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/bench"
)

// graft bench's strategies on the real server's transactional graph: graft,
// and the graph writer's two designs (one transaction per event from a
// pool of 16 with random-sleep retries, with and without a per-organization
// lock). graft's final graph must equal the model, with nothing
// dead-lettered; the pool strategies meet real conflicts, and their graphs
// are reported, not required (events of one organization overtake each
// other in the pool: docs/benchmarks.md). The figures in docs/benchmarks.md come from this test
// with a larger workload:
//
//	GRAFT_GREMLIN_BENCH_SCALE=0.3 go test ./sink/gremlin -run TestBenchOnRealServer -v
func TestBenchOnRealServer(t *testing.T) {
	// In the suite: graft and naive on a small workload (locked runs at a
	// few writes a second here: minutes); with the variable, all three.
	scale, strategies := 0.05, []string{"graft", "naive"}
	if v := os.Getenv("GRAFT_GREMLIN_BENCH_SCALE"); v != "" {
		var err error
		if scale, err = strconv.ParseFloat(v, 64); err != nil {
			t.Fatalf("GRAFT_GREMLIN_BENCH_SCALE: %v", err)
		}
		strategies = append(strategies, "locked")
	}
	s := emptyGraph(t, "gtx")
	cfg := bench.DefaultFleet()
	cfg.Orgs = max(int(100*scale), 1)
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	results, err := bench.Run(ctx, s, "gremlin+ws (TinkerTransactionGraph)", wl, bench.Options{
		Strategies: strategies, Workers: 16, Attempts: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	bench.WriteTable(&table, results)
	t.Logf("%d writes, %d organizations:\n%s", len(wl.Writes), cfg.Orgs, table.String())
	for _, r := range results {
		switch {
		case r.Strategy == "graft" && !r.Correct:
			t.Errorf("graft: the final graph differs from the model:\n%s", r.Differences)
		case r.Strategy == "graft" && r.DeadLetters != 0:
			t.Errorf("graft dead-lettered %d writes of a workload without poison", r.DeadLetters)
		case r.Strategy == "naive" && r.Conflicts == 0:
			t.Errorf("naive met no conflict: the server's transactions are not tested")
		}
	}
}
