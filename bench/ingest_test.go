package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/sink/sqlite"
	"github.com/graftdb/graft/source/file"
)

// The pipeline's own overhead: graft ingest (file source → engine → SQLite)
// against the store's raw apply rate for the same writes, pre-decoded and
// pre-batched with the same limits in one goroutine.
//
//	go test ./bench -run '^$' -bench . -benchtime 3x
//
// Two workloads: "fleet" (device software updates, where the write cache and
// coalescing remove most ops) and "unique" (every write creates two new
// vertices and an edge between them, so nothing can be eliminated: the pure
// overhead).

const benchWrites = 20000

func workloads() map[string][]*graft.Write {
	seed := bench.NewFleet(bench.DefaultFleet())
	var s, u []*graft.Write
	for i := 0; i < benchWrites; i++ {
		s = append(s, seed.Next())
		a, c := fmt.Sprintf("a%d", i), fmt.Sprintf("c%d", i)
		u = append(u, &graft.Write{Key: fmt.Sprintf("k%d", i%64), ID: a, Ops: []graft.Op{
			{Kind: graft.UpsertVertex, ID: a, Label: "thing", Props: graft.Props{"n": graft.Int(int64(i)), "s": graft.String(a)}},
			{Kind: graft.UpsertVertex, ID: c, Label: "thing"},
			{Kind: graft.UpsertEdge, Label: "next", From: a, To: c, Props: graft.Props{"at": graft.Int(int64(i))}},
		}})
	}
	return map[string][]*graft.Write{"fleet": s, "unique": u}
}

func openStore(b *testing.B) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "graph.db"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkRawApply(b *testing.B) {
	for name, ws := range workloads() {
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				s := openStore(b)
				lim := s.Limits()
				start := time.Now()
				batch, units := &graft.Batch{}, 0
				flush := func() {
					if err := s.Apply(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					batch, units = &graft.Batch{}, 0
				}
				for _, w := range ws {
					if u := w.Units(); len(batch.Writes) > 0 && (units+u > lim.MaxUnits || len(batch.Writes) >= lim.MaxWrites) {
						flush()
					}
					batch.Writes = append(batch.Writes, w)
					units += w.Units()
				}
				flush()
				total += time.Since(start)
				s.Close()
			}
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
		})
	}
}

func BenchmarkIngest(b *testing.B) {
	for name, ws := range workloads() {
		var ndjson []byte
		for _, w := range ws {
			ndjson = append(w.AppendJSON(ndjson), '\n')
		}
		for _, cache := range []int{0, -1} {
			label := name + "/cache"
			if cache < 0 {
				label = name + "/nocache"
			}
			b.Run(label, func(b *testing.B) {
				cfg := engine.Default()
				cfg.CacheSize = cache
				var total time.Duration
				for i := 0; i < b.N; i++ {
					s := openStore(b)
					e, err := engine.New(s, discard{}, cfg)
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					if err := e.Run(context.Background(), file.New("bench", bytes.NewReader(ndjson), 0)); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
					st := e.Stats().Snapshot()
					if st.Committed != int64(len(ws)) {
						b.Fatalf("committed %d of %d", st.Committed, len(ws))
					}
					if i == 0 {
						b.ReportMetric(float64(st.Eliminated+st.Coalesced)/float64(st.Ops), "dropped-ops/op")
					}
					s.Close()
				}
				b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
			})
		}
	}
}

type discard struct{}

func (discard) Append(context.Context, []*graft.Letter) error { return nil }
