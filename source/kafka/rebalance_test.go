package kafka_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/source/kafka"
)

// How long a member joining a busy group waits for its first record, with
// a backlog in the engine of the member already there: a measurement, on
// the real broker, of the per-partition in-flight bound
// (max_inflight_per_partition) against none.
//
//	GRAFT_KAFKA_REBALANCE=1 go test ./source/kafka -run RebalanceTime -v
func TestRebalanceTimeUnderBacklog(t *testing.T) {
	if os.Getenv("GRAFT_KAFKA_REBALANCE") == "" {
		t.Skip("a measurement: GRAFT_KAFKA_REBALANCE=1 go test ./source/kafka -run RebalanceTime -v")
	}
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = 150, 10, 20, 5
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, bound := range []int{-1, 1000, 100} {
		e := clusterN(t, "kafka", wl, 12)
		g := memgraph.New()
		sink := &paced{Sink: &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxUnits: 20000, MaxBytes: 1 << 20, MaxWrites: 50, Concurrency: 1}}}
		start := func(instance string, first *atomic.Int64) (*kafka.Source, context.CancelFunc, chan error) {
			src, err := kafka.New(kafka.Config{Brokers: e.brokers, Topics: []string{e.topic}, Group: e.group, InstanceID: instance, SessionTimeout: 6 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ec := engine.Default()
			ec.MaxInflightPerPartition = bound
			en, err := engine.New(sink, &dlq{}, ec)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- en.Run(ctx, &firstRecord{Source: src, at: first}) }()
			return src, cancel, done
		}
		var firstA, firstB atomic.Int64
		srcA, stopA, doneA := start("a", &firstA)
		for sink.applied.Load() < 1000 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // A's backlog builds up
		joined := time.Now()
		srcB, stopB, doneB := start("b", &firstB)
		deadline := time.Now().Add(2 * time.Minute)
		for firstB.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		wait := "none within 2m0s"
		if at := firstB.Load(); at != 0 {
			wait = "after " + time.Duration(at-joined.UnixNano()).Round(time.Millisecond).String()
		}
		waitForModel(t, g, wl)
		for _, m := range []struct {
			src  *kafka.Source
			stop context.CancelFunc
			done chan error
		}{{srcA, stopA, doneA}, {srcB, stopB, doneB}} {
			m.stop()
			if err := <-m.done; err != nil && !errors.Is(err, graft.ErrClosed) {
				t.Errorf("member: %v", err)
			}
			m.src.Close()
		}
		t.Logf("max_inflight_per_partition %5d: the joining member's first record: %s (%d writes)", bound, wait, len(wl.Writes))
	}
}

// paced applies a batch in 20 ms (a slow store) and counts the writes.
type paced struct {
	*memgraph.Sink
	applied atomic.Int64
}

func (p *paced) Apply(ctx context.Context, b *graft.Batch) error {
	time.Sleep(20 * time.Millisecond)
	if err := p.Sink.Apply(ctx, b); err != nil {
		return err
	}
	p.applied.Add(int64(len(b.Writes)))
	return nil
}

// firstRecord notes when its source first delivers a record.
type firstRecord struct {
	*kafka.Source
	at *atomic.Int64
}

func (f *firstRecord) Fetch(ctx context.Context) ([]graft.Record, error) {
	recs, err := f.Source.Fetch(ctx)
	if len(recs) > 0 {
		f.at.CompareAndSwap(0, time.Now().UnixNano())
	}
	return recs, err
}
