package lambda

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/pgtest"
	"github.com/graftdb/graft/sink/postgres"
	"github.com/graftdb/graft/sink/sqlite"
)

// One Lambda invocation's batch — 500 fleet writes over 2 shards, as a
// Kinesis event source mapping with BatchSize 500 delivers them — into a
// fresh store: Graft's handler against the hand-rolled handler teams write
// today, which decodes each record and applies it in its own transaction,
// in order:
//
//	go test ./source/lambda -run '^$' -bench Invocation -benchtime 3x
func BenchmarkInvocation(b *testing.B) {
	ws, _ := bench.FleetWrites(500)
	var ev events.KinesisEvent
	for i, w := range ws {
		h := fnv.New32a()
		h.Write([]byte(w.Key))
		shard := fmt.Sprintf("shardId-%012d", h.Sum32()%2)
		seq := fmt.Sprintf("4968%052d", i)
		ev.Records = append(ev.Records, events.KinesisEventRecord{EventID: shard + ":" + seq, EventSource: "aws:kinesis",
			Kinesis: events.KinesisRecord{Data: w.AppendJSON(nil), PartitionKey: w.Key, SequenceNumber: seq}})
	}
	stores := []struct {
		name string
		open func(b *testing.B) graft.Sink
	}{
		{"sqlite", func(b *testing.B) graft.Sink {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "graph.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) graft.Sink {
			pgOnce.Do(func() { pgServer, pgErr = pgtest.Start() })
			s, err := postgres.Open(context.Background(), pgtest.Require(b, pgServer, pgErr).Database(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	ctx := context.Background()
	for _, st := range stores {
		b.Run(st.name+"/graft", func(b *testing.B) {
			var total time.Duration
			for range b.N {
				s := st.open(b)
				h := &Handler{Sink: s, Config: engine.Default()}
				start := time.Now()
				resp, err := h.Handle(ctx, ev)
				total += time.Since(start)
				if err != nil || len(resp.BatchItemFailures) != 0 {
					b.Fatalf("%+v %v", resp.BatchItemFailures, err)
				}
				s.Close()
			}
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
		})
		b.Run(st.name+"/per-record", func(b *testing.B) {
			var total time.Duration
			for range b.N {
				s := st.open(b)
				start := time.Now()
				for _, r := range ev.Records {
					w, err := graft.Decode(r.Kinesis.Data, r.Kinesis.PartitionKey, graft.DefaultLimits)
					if err != nil {
						b.Fatal(err)
					}
					if err := s.Apply(ctx, &graft.Batch{Writes: []*graft.Write{w}}); err != nil {
						b.Fatal(err)
					}
				}
				total += time.Since(start)
				s.Close()
			}
			b.ReportMetric(float64(len(ws)*b.N)/total.Seconds(), "writes/s")
		})
	}
}

var (
	pgOnce   sync.Once
	pgServer *pgtest.Server
	pgErr    error
)

// TestMain stops the PostgreSQL server the benchmark may have started.
func TestMain(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		pgServer.Stop()
	}
	os.Exit(code)
}
