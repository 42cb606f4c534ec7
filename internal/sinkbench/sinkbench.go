// Package sinkbench measures a sink the same way for every sink: its raw
// batched apply rate at several batch sizes, and graft ingest of the same
// writes through the engine.
package sinkbench

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/source/file"
)

// Open returns a fresh, empty sink for one run.
type Open func(b *testing.B) graft.Sink

// RawApply applies ws in order in batches of each size, one goroutine, and
// reports writes/s, ops/s and batches (requests, transactions)/s.
func RawApply(b *testing.B, open Open, ws []*graft.Write, ops int, sizes ...int) {
	for _, size := range sizes {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				s := open(b)
				total += ApplyAll(b, s, ws, size)
				s.Close()
			}
			b.ReportMetric(float64((len(ws)+size-1)/size*b.N)/total.Seconds(), "batches/s")
			b.ReportMetric(float64(ops*b.N)/total.Seconds(), "ops/s")
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
		})
	}
}

// ApplyAll applies ws in order in batches of size, one goroutine, and
// returns how long it took.
func ApplyAll(b *testing.B, s graft.Sink, ws []*graft.Write, size int) time.Duration {
	b.Helper()
	start := time.Now()
	for j := 0; j < len(ws); j += size {
		if err := s.Apply(context.Background(), &graft.Batch{Writes: ws[j:min(j+size, len(ws))]}); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

type noLetters struct{}

func (noLetters) Append(context.Context, []*graft.Letter) error { return nil }

// Ingest runs ws as NDJSON through the engine (graft ingest) into fresh
// sinks and reports writes/s and ops/s.
func Ingest(b *testing.B, open Open, ws []*graft.Write, ops int) {
	var ndjson []byte
	for _, w := range ws {
		ndjson = append(w.AppendJSON(ndjson), '\n')
	}
	var total time.Duration
	for range b.N {
		s := open(b)
		e, err := engine.New(s, noLetters{}, engine.Default())
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
