package postgres

import (
	"testing"

	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/workload"
)

// The engine's multi-partition restart test (engine:
// TestRestartAcrossPartitionsWithVersions) on PostgreSQL: four partitions
// by key read at different speeds, killed ten times and restarted from the
// acknowledged positions; the versions in graft_versions make the graph
// the model's, the writes applied in version order.
func TestRestartAcrossPartitionsWithVersions(t *testing.T) {
	s := open(t)
	wl := workload.Random(t, 17, 3000, 30, 50)
	lines := workload.WithVersions(wl.Lines)
	letters := &memgraph.Letters{}
	cfg := engine.Default()
	cfg.MaxBatchWrites = 50 // many batches in flight, many crash points
	prefix := 50 + 25       // the stable and mortal vertices, before anything links to them
	workload.CrashAndRestart(t, s, letters, cfg, lines[:prefix], 4, 0, 0, 17, nil)
	workload.CrashAndRestart(t, s, letters, cfg, lines[prefix:], 4, 300, 10, 17, nil)
	conformance.CheckModel(t, s, wl.Model)
	wl.CheckLetters(t, letters.All())
}
