package sparql

import (
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/sinkbench"
	"github.com/graftdb/graft/internal/virtuosotest"
)

// Updates against Virtuoso (default settings: its row cap of 10,000) and
// Fuseki at batch sizes 1, 10, 100, 500 (the fleet workload's writes,
// pre-decoded, applied in order by one goroutine: each batch is one update
// request), where a batch's time goes, and graft ingest of the same writes:
//
//	go test ./sink/sparql -run '^$' -bench . -benchtime 1x
const benchWrites = 2000

var (
	benchMu       sync.Mutex
	benchVirtuoso *virtuosotest.Server
)

// stores are the endpoints the benchmarks run on.
func stores(b *testing.B) map[string]string {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	if benchVirtuoso == nil {
		benchVirtuoso = virtuosotest.StartCapped(&keepAlive{TB: b}, virtuosotest.DefaultMaxRows)
	}
	return map[string]string{"virtuoso": benchVirtuoso.Endpoint, "fuseki": fusekiEndpoint(b)}
}

func benchStore(endpoint string) func(b *testing.B) *Store {
	return func(b *testing.B) *Store { return openGraph(b, endpoint) }
}

func BenchmarkRawApply(b *testing.B) {
	ws, ops := bench.FleetWrites(benchWrites)
	for _, name := range []string{"virtuoso", "fuseki"} {
		open := benchStore(stores(b)[name])
		b.Run(name, func(b *testing.B) {
			sinkbench.RawApply(b, func(b *testing.B) graft.Sink { return open(b) }, ws, ops, 1, 10, 100, 500)
		})
	}
}

func BenchmarkIngest(b *testing.B) {
	ws, ops := bench.FleetWrites(benchWrites)
	for _, name := range []string{"virtuoso", "fuseki"} {
		open := benchStore(stores(b)[name])
		b.Run(name, func(b *testing.B) {
			sinkbench.Ingest(b, func(b *testing.B) graft.Sink { return open(b) }, ws, ops)
		})
	}
}

// BenchmarkPhases: batches of 500 writes, and the share of a batch's time
// spent reading what it touches, computing the difference, and updating.
func BenchmarkPhases(b *testing.B) {
	ws, _ := bench.FleetWrites(benchWrites)
	const size = 500
	for _, name := range []string{"virtuoso", "fuseki"} {
		open := benchStore(stores(b)[name])
		b.Run(name, func(b *testing.B) {
			var total, read, compute, update time.Duration
			for range b.N {
				s := open(b)
				total += sinkbench.ApplyAll(b, s, ws, size)
				r, c, u := s.Phases()
				read, compute, update = read+r, compute+c, update+u
			}
			batches := float64((len(ws) + size - 1) / size * b.N)
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
			b.ReportMetric(read.Seconds()*1000/batches, "read-ms/batch")
			b.ReportMetric(compute.Seconds()*1000/batches, "compute-ms/batch")
			b.ReportMetric(update.Seconds()*1000/batches, "update-ms/batch")
		})
	}
}
