package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/workload"
	"github.com/graftdb/graft/sink/sqlite"
)

// The engine's multi-partition restart test (engine:
// TestRestartAcrossPartitionsWithVersions) on the embedded store: four
// partitions by key read at different speeds, killed ten times and
// restarted from the acknowledged positions; the versions in
// graft_versions make the graph the model's, the writes applied in
// version order.
func TestRestartAcrossPartitionsWithVersions(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "graph.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wl := workload.Random(t, 19, 3000, 30, 50)
	lines := workload.WithVersions(wl.Lines)
	letters := &memgraph.Letters{}
	cfg := engine.Default()
	cfg.MaxBatchWrites = 50 // many batches, many crash points
	prefix := 50 + 25       // the stable and mortal vertices, before anything links to them
	workload.CrashAndRestart(t, s, letters, cfg, lines[:prefix], 4, 0, 0, 19, nil)
	workload.CrashAndRestart(t, s, letters, cfg, lines[prefix:], 4, 300, 10, 19, nil)
	conformance.CheckModel(t, s, wl.Model)
	wl.CheckLetters(t, letters.All())
}
