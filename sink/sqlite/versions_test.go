package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

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
	workload.RestartVersioned(t, s, s, 19, 3000, 300)
}
