package sparql

import (
	"testing"

	"github.com/graftdb/graft/internal/workload"
)

// The engine's multi-partition restart test (engine:
// TestRestartAcrossPartitionsWithVersions) on Virtuoso (capped at 300
// rows a read) and Fuseki: four partitions by key read at different
// speeds, killed ten times and restarted from the acknowledged positions;
// the version triples make the graph the model's, the writes applied in
// version order.
func TestRestartAcrossPartitionsWithVersions(t *testing.T) {
	for _, store := range []struct {
		name     string
		endpoint func(t *testing.T) string
	}{
		{"virtuoso", func(t *testing.T) string { return virtuoso(t).Endpoint }},
		{"fuseki", func(t *testing.T) string { return fusekiEndpoint(t) }},
	} {
		t.Run(store.name, func(t *testing.T) {
			s := openGraph(t, store.endpoint(t))
			workload.RestartVersioned(t, s, s, 23, 1500, 150)
		})
	}
}
