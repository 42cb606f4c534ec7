package sparql

import (
	"fmt"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/sinkbench"
)

// Updates against Virtuoso at batch sizes 1, 10, 100, 500 (the fleet
// workload's writes, pre-decoded, applied in order by one goroutine: each
// batch is one update request), and graft ingest of the same writes:
//
//	go test ./sink/sparql -run '^$' -bench . -benchtime 1x
const benchWrites = 2000

func benchStore(b *testing.B) graft.Sink {
	b.Helper()
	srv := virtuosoB(b)
	cfg, err := ParseURL(fmt.Sprintf("sparql+%s?graph=urn:graft:bench:%d", srv.Endpoint, graphNo.Add(1)))
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkRawApply(b *testing.B) {
	ws, ops := bench.FleetWrites(benchWrites)
	sinkbench.RawApply(b, benchStore, ws, ops, 1, 10, 100, 500)
}

func BenchmarkIngest(b *testing.B) {
	ws, ops := bench.FleetWrites(benchWrites)
	sinkbench.Ingest(b, benchStore, ws, ops)
}
