package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/kafkatest"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/source/kafka"
)

// With derived versions, a Kafka record's version is its timestamp (then
// its offset): a record of another partition applied later but stamped
// earlier does not undo a newer one. Here v.q = 1 is stamped a second
// after v.q = 2, applied before it, and stays.
func TestDerivedVersionsFromTimestamps(t *testing.T) {
	kafkatest.OnBrokers(t, func(t *testing.T, kind string) {
		brokers, prefix := kafkatest.Broker(t, kind, map[string]int32{"graph.write.V": 2})
		topic := prefix + "graph.write.V"
		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		produce := func(partition int32, at time.Time, id string, q int) {
			t.Helper()
			v := fmt.Sprintf(`{"key":"%d","ops":[{"op":"upsertVertex","id":%q,"label":"x","props":{"q":%d}}]}`, partition, id, q)
			if err := prod.ProduceSync(context.Background(), &kgo.Record{Partition: partition, Timestamp: at, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		g := memgraph.New()
		src, err := kafka.New(kafka.Config{Brokers: brokers, Topics: []string{topic}, Group: prefix + "graft"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := groupConfig()
		cfg.DeriveVersions = true
		e, err := engine.New(&memgraph.Sink{Graph: g}, &dlq{}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx, src) }()
		defer func() {
			cancel()
			<-done
			src.Close()
		}()
		q := func(id string) int64 {
			v, err := g.Vertex(context.Background(), id)
			if err != nil {
				return -1
			}
			return v.Props["q"].Int()
		}
		wait := func(id string, want int64) {
			t.Helper()
			for deadline := time.Now().Add(60 * time.Second); q(id) != want; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s.q = %d, want %d", id, q(id), want)
				}
			}
		}
		produce(0, base.Add(time.Second), "v", 1)
		wait("v", 1)
		produce(1, base, "v", 2)
		produce(1, base.Add(2*time.Second), "mark", 1) // after it in its partition
		wait("mark", 1)
		if got := q("v"); got != 1 {
			t.Fatalf("v.q = %d: the write stamped a second earlier undid the newer one", got)
		}
	})
}

func TestVersionOf(t *testing.T) {
	at := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC).UnixMilli()
	for _, c := range []struct {
		a, b [2]int64 // ms, offset
	}{
		{[2]int64{at, 7}, [2]int64{at + 1, 0}},
		{[2]int64{at, 7}, [2]int64{at, 8}},
		{[2]int64{at, 0}, [2]int64{at, 1<<21 - 1}},
		{[2]int64{at + 1, 1 << 40}, [2]int64{at + 2, 0}},
	} {
		if va, vb := graft.VersionOf(c.a[0], c.a[1]), graft.VersionOf(c.b[0], c.b[1]); va <= 0 || va >= vb {
			t.Errorf("VersionOf%v = %d, VersionOf%v = %d: want 0 < first < second", c.a, va, c.b, vb)
		}
	}
	if graft.VersionOf(1<<42, 0) != 0 || graft.VersionOf(0, 5) != 0 {
		t.Error("a time out of range gives a version")
	}
}
