package kafka_test

import (
	"context"
	"errors"
	"fmt"
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
// (max_inflight_per_partition) against none (-1). A joining member that
// gets nothing within 2 minutes reports 120 s.
//
//	go test ./source/kafka -run '^$' -bench Rebalance -benchtime 1x -v
func BenchmarkRebalanceUnderBacklog(b *testing.B) {
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = 150, 10, 20, 5
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, bound := range []int{-1, 1000, 100} {
		b.Run(fmt.Sprintf("bound=%d", bound), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				total += firstRecordAfterJoin(b, wl, bound)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-first-record")
		})
	}
}

// firstRecordAfterJoin runs one member with a backlog, then a second, and
// returns how long the second waited for its first record.
func firstRecordAfterJoin(b *testing.B, wl *bench.Workload, bound int) time.Duration {
	e := clusterN(b, "kafka", wl, 12)
	g := memgraph.New()
	sink := &paced{Sink: &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxUnits: 20000, MaxBytes: 1 << 20, MaxWrites: 50, Concurrency: 1}}}
	start := func(instance string, first *atomic.Int64) (*kafka.Source, context.CancelFunc, chan error) {
		src, err := kafka.New(kafka.Config{Brokers: e.brokers, Topics: []string{e.topic}, Group: e.group, InstanceID: instance, SessionTimeout: 6 * time.Second}, nil)
		if err != nil {
			b.Fatal(err)
		}
		ec := groupConfig()
		ec.MaxInflightPerPartition = bound
		en, err := engine.New(sink, &dlq{}, ec)
		if err != nil {
			b.Fatal(err)
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
	const patience = 2 * time.Minute
	for firstB.Load() == 0 && time.Since(joined) < patience {
		time.Sleep(5 * time.Millisecond)
	}
	wait := patience
	if at := firstB.Load(); at != 0 {
		wait = time.Duration(at - joined.UnixNano())
	}
	waitForModel(b, g, wl)
	for _, m := range []struct {
		src  *kafka.Source
		stop context.CancelFunc
		done chan error
	}{{srcA, stopA, doneA}, {srcB, stopB, doneB}} {
		m.stop()
		if err := <-m.done; err != nil && !errors.Is(err, graft.ErrClosed) {
			b.Errorf("member: %v", err)
		}
		m.src.Close()
	}
	b.Logf("max_inflight_per_partition %5d: the joining member's first record after %v (%d writes)", bound, wait.Round(time.Millisecond), len(wl.Writes))
	return wait
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
