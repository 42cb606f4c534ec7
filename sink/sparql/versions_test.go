package sparql

import (
	"testing"

	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
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
			wl := workload.Random(t, 23, 1500, 30, 50)
			lines := workload.WithVersions(wl.Lines)
			letters := &memgraph.Letters{}
			cfg := engine.Default()
			cfg.MaxBatchWrites = 50 // many batches, many crash points
			prefix := 50 + 25       // the stable and mortal vertices, before anything links to them
			workload.CrashAndRestart(t, s, letters, cfg, lines[:prefix], 4, 0, 0, 23, nil)
			workload.CrashAndRestart(t, s, letters, cfg, lines[prefix:], 4, 150, 10, 23, nil)
			conformance.CheckModel(t, s, wl.Model)
			wl.CheckLetters(t, letters.All())
		})
	}
}
