package sparql

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

// Updates against Virtuoso at batch sizes 1, 10, 100, 500 (the seed
// workload's writes, pre-decoded, applied in order by one goroutine: each
// batch is one update request), and graft ingest of the same writes:
//
//	go test ./sink/sparql -run '^$' -bench . -benchtime 1x
const benchWrites = 2000

func seedWrites() ([]*graft.Write, int) { return bench.SeedWrites(benchWrites) }

func benchStore(b *testing.B) *Store {
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
	ws, ops := seedWrites()
	for _, size := range []int{1, 10, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				s := benchStore(b)
				start := time.Now()
				for j := 0; j < len(ws); j += size {
					if err := s.Apply(context.Background(), &graft.Batch{Writes: ws[j:min(j+size, len(ws))]}); err != nil {
						b.Fatal(err)
					}
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(len(ws)/size*b.N)/total.Seconds(), "updates/s")
			b.ReportMetric(float64(ops*b.N)/total.Seconds(), "ops/s")
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
		})
	}
}

type noDLQ struct{}

func (noDLQ) Append(context.Context, []*graft.Letter) error { return nil }

func BenchmarkIngest(b *testing.B) {
	ws, ops := seedWrites()
	var ndjson []byte
	for _, w := range ws {
		ndjson = append(w.AppendJSON(ndjson), '\n')
	}
	var total time.Duration
	for range b.N {
		s := benchStore(b)
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
	}
	b.ReportMetric(float64(ops*b.N)/total.Seconds(), "ops/s")
	b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
}
