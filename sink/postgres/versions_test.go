package postgres

import (
	"testing"

	"github.com/graftdb/graft/internal/workload"
)

// The engine's multi-partition restart test (engine:
// TestRestartAcrossPartitionsWithVersions) on PostgreSQL: four partitions
// by key read at different speeds, killed ten times and restarted from the
// acknowledged positions; the versions in graft_versions make the graph
// the model's, the writes applied in version order.
func TestRestartAcrossPartitionsWithVersions(t *testing.T) {
	s := open(t)
	workload.RestartVersioned(t, s, s, 17, 3000, 300)
}
