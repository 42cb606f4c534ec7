package postgres

import (
	"context"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/sinkbench"
)

// The sink's raw batched apply rate at batch sizes 1, 10, 100, 1000 (the fleet
// workload's writes, pre-decoded, applied in order by one goroutine), and
// graft ingest of the same writes through the engine:
//
//	go test ./sink/postgres -run '^$' -bench . -benchtime 1x
const pgBenchWrites = 4000

func benchStore(b *testing.B) graft.Sink {
	s, err := Open(context.Background(), testDSN(b))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkRawApply(b *testing.B) {
	ws, ops := bench.FleetWrites(pgBenchWrites)
	sinkbench.RawApply(b, benchStore, ws, ops, 1, 10, 100, 1000)
}

func BenchmarkIngest(b *testing.B) {
	ws, ops := bench.FleetWrites(pgBenchWrites)
	sinkbench.Ingest(b, benchStore, ws, ops)
}
