package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/kafkaserver"
	"github.com/graftdb/graft/internal/pgtest"
	"github.com/graftdb/graft/sink/postgres"
	"github.com/graftdb/graft/sink/sqlite"
	"github.com/graftdb/graft/source/kafka"
)

// BenchmarkConsume: how fast a consumer group gets the fleet workload from a
// 12-partition topic into a graph, against the ceilings.
//
//	go test ./source/kafka -run '^$' -bench Consume -benchtime 2x
//
//	poll      franz-go polling the group and committing, no engine: Kafka's ceiling here
//	discard   the whole source and engine path into a sink that drops everything
//	sqlite    committed into the embedded store
//	postgres  committed into PostgreSQL (a throwaway server; skipped without one)
//
// Every iteration is a fresh group, so it reads the topic from the start;
// the clock starts at the first record fetched (group join excluded) and
// stops when every record is committed or dead-lettered and its offset
// committed to the group.
//
// On kfake (12 partitions) and on a real Apache Kafka broker (12 and 120
// partitions, the seed's shape): go test ./source/kafka -run '^$' -bench
// 'Consume/kafka-120'.
func BenchmarkConsume(b *testing.B) {
	b.Run("kfake-12", func(b *testing.B) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, topic))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		consumeBench(b, c.ListenAddrs(), topic)
	})
	for _, partitions := range []int32{12, 120} {
		b.Run(fmt.Sprintf("kafka-%d", partitions), func(b *testing.B) {
			srv := kafkaserver.Shared(b)
			t := kafkaserver.UniqueName(topic + ".bench.")
			srv.CreateTopic(b, t, partitions)
			consumeBench(b, srv.Brokers(), t)
		})
	}
}

func consumeBench(b *testing.B, brokers []string, topic string) {
	const writes = 20000
	cfg := bench.DefaultFleet()
	seed := bench.NewFleet(cfg)
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	var recs []*kgo.Record
	for range writes {
		w := seed.Next()
		recs = append(recs, &kgo.Record{Key: []byte(w.Key), Value: w.AppendJSON(nil)})
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	prod.Close()
	group := 0
	nextGroup := func() string { group++; return fmt.Sprintf("bench-%s-%d", topic, group) }

	report := func(b *testing.B, total time.Duration) {
		b.ReportMetric(float64(writes*b.N)/total.Seconds(), "writes/s")
		b.ReportMetric(0, "ns/op")
	}

	b.Run("poll", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(nextGroup()), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
			if err != nil {
				b.Fatal(err)
			}
			var start time.Time
			n := 0
			for n < writes {
				fs := cl.PollRecords(context.Background(), 4096)
				if start.IsZero() {
					start = time.Now()
				}
				n += fs.NumRecords()
				if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			total += time.Since(start)
			cl.Close()
		}
		report(b, total)
	})

	run := func(b *testing.B, sink graft.Sink) time.Duration {
		src, err := kafka.New(kafka.Config{Brokers: brokers, Topics: []string{topic}, Group: nextGroup()}, nil)
		if err != nil {
			b.Fatal(err)
		}
		timed := &firstFetch{Source: src}
		e, err := engine.New(sink, &dlq{}, groupConfig())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx, timed) }()
		for {
			st := e.Stats().Snapshot()
			if st.Committed+st.DeadLetters >= writes {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		<-done
		src.Close() // commits the last offsets
		return time.Since(timed.start)
	}

	b.Run("discard", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			total += run(b, discardSink{})
		}
		report(b, total)
	})

	b.Run("sqlite", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "graph.db"))
			if err != nil {
				b.Fatal(err)
			}
			total += run(b, s)
			s.Close()
		}
		report(b, total)
	})

	b.Run("postgres", func(b *testing.B) {
		server, startErr := pgtest.Start()
		defer server.Stop()
		dsn := pgtest.Require(b, server, startErr).Database(b)
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		var total time.Duration
		for range b.N {
			if err := s.Reset(context.Background()); err != nil {
				b.Fatal(err)
			}
			total += run(b, s)
		}
		report(b, total)
	})
}

// firstFetch notes when the first records arrive.
type firstFetch struct {
	*kafka.Source
	start time.Time
}

func (f *firstFetch) Fetch(ctx context.Context) ([]graft.Record, error) {
	recs, err := f.Source.Fetch(ctx)
	if f.start.IsZero() && len(recs) > 0 {
		f.start = time.Now()
	}
	return recs, err
}

// discardSink drops every batch, with PostgreSQL's batch limits.
type discardSink struct{}

func (discardSink) Apply(context.Context, *graft.Batch) error { return nil }
func (discardSink) Limits() graft.SinkLimits {
	return graft.SinkLimits{MaxWrites: 2000, MaxUnits: 20000, MaxBytes: 16 << 20, Concurrency: 8}
}
func (discardSink) Ping(context.Context) error { return nil }
func (discardSink) Close() error               { return nil }
