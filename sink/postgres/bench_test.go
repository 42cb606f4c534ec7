package postgres

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/source/file"
)

// The sink's raw batched apply rate at batch sizes 1, 10, 100, 1000 (the seed
// workload's writes, pre-decoded, applied in order by one goroutine), and
// graft ingest of the same writes through the engine:
//
//	go test ./sink/postgres -run '^$' -bench . -benchtime 1x
const pgBenchWrites = 4000

func seedWrites() ([]*graft.Write, int) { return bench.SeedWrites(pgBenchWrites) }

func BenchmarkRawApply(b *testing.B) {
	ws, ops := seedWrites()
	for _, size := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				s, err := Open(context.Background(), testDSN(b))
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for j := 0; j < len(ws); j += size {
					if err := s.Apply(context.Background(), &graft.Batch{Writes: ws[j:min(j+size, len(ws))]}); err != nil {
						b.Fatal(err)
					}
				}
				total += time.Since(start)
				s.Close()
			}
			b.ReportMetric(float64(ops*b.N)/total.Seconds(), "ops/s")
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
		})
	}
}

func BenchmarkIngest(b *testing.B) {
	ws, ops := seedWrites()
	var ndjson []byte
	for _, w := range ws {
		ndjson = append(w.AppendJSON(ndjson), '\n')
	}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		s, err := Open(context.Background(), testDSN(b))
		if err != nil {
			b.Fatal(err)
		}
		e, err := engine.New(s, noDLQ{}, engine.Default())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := e.Run(context.Background(), file.New("bench", bytes.NewReader(ndjson), 0)); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if c := e.Stats().Committed.Load(); c != int64(len(ws)) {
			b.Fatalf("committed %d of %d", c, len(ws))
		}
		s.Close()
	}
	b.ReportMetric(float64(ops*b.N)/total.Seconds(), "ops/s")
	b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
}
