package kafka_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/kafkaserver"
	"github.com/graftdb/graft/internal/kafkatest"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/semantics"
	"github.com/graftdb/graft/source/kafka"
)

const topic = "graph.write.DeviceSoftwareUpdated"

// env is a 12-partition topic holding a workload on a broker, and the
// consumer group to read it with.
type env struct {
	brokers []string
	topic   string
	group   string
	session time.Duration // the members' session timeout (0: 2 s)
}

func TestMain(m *testing.M) {
	code := m.Run()
	kafkaserver.StopShared()
	os.Exit(code)
}

// cluster makes a 12-partition topic holding the workload, keyed by
// organization (the graph writer's layout), with a poison record in the
// middle: on kfake, or on the package's real broker (a topic and group of
// the test's own).
func cluster(t *testing.T, kind string, wl *bench.Workload) env {
	t.Helper()
	return clusterN(t, kind, wl, 12)
}

// clusterN is cluster with a topic of the given partitions.
func clusterN(t testing.TB, kind string, wl *bench.Workload, partitions int32) env {
	t.Helper()
	brokers, prefix := kafkatest.Broker(t, kind, map[string]int32{topic: partitions})
	e := env{brokers: brokers, topic: prefix + topic, group: prefix + "graft"}
	prod, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	var recs []*kgo.Record
	for i, w := range wl.Writes {
		recs = append(recs, &kgo.Record{Key: []byte(w.Key), Value: w.AppendJSON(nil)})
		if i == len(wl.Writes)/2 {
			recs = append(recs, &kgo.Record{Key: []byte(w.Key), Value: []byte(`{"ops":[{"op":"bogus"}]}`)})
		}
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return e
}

// producer returns a function that produces writes to e's topic, keyed by
// their key, with acks=all and retries through broker restarts and
// failovers; it fails the test if they are not all stored within 90 s.
func producer(t *testing.T, e env) func(ws []*graft.Write) {
	prod, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return func(ws []*graft.Write) {
		t.Helper()
		var recs []*kgo.Record
		for _, w := range ws {
			recs = append(recs, &kgo.Record{Key: []byte(w.Key), Value: w.AppendJSON(nil)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

type member struct {
	src    *kafka.Source
	cancel context.CancelFunc
	done   chan error
}

type dlq struct {
	mu sync.Mutex
	n  int
}

func (d *dlq) Append(_ context.Context, ls []*graft.Letter) error {
	d.mu.Lock()
	d.n += len(ls)
	d.mu.Unlock()
	return nil
}

func join(t *testing.T, e env, instance string, sink graft.Sink, letters *dlq) *member {
	t.Helper()
	session := e.session
	if session == 0 {
		session = 2 * time.Second
	}
	src, err := kafka.New(kafka.Config{Brokers: e.brokers, Topics: []string{e.topic}, Group: e.group, InstanceID: instance, SessionTimeout: session}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := groupConfig()
	// A low per-partition bound: partitions are paused and resumed all the
	// time, through the kills, joins and rebalances of the tests.
	cfg.MaxInflightPerPartition = 25
	if instance == "b" {
		cfg.DrainTimeout = time.Millisecond // it gets killed: it must stop writing at once, as a crashed process does
	}
	eng, err := engine.New(sink, letters, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- eng.Run(ctx, src) }()
	return m
}

// stop is a graceful stop: drain, commit, leave the group.
func (m *member) stop(t *testing.T) {
	m.cancel()
	if err := <-m.done; err != nil && !errors.Is(err, graft.ErrClosed) {
		t.Errorf("member: %v", err)
	}
	m.src.Close()
}

// kill is a crash: no drain, no commit, no LeaveGroup (static member).
func (m *member) kill() {
	m.cancel()
	<-m.done
	m.src.Kill()
}

// groupConfig is the engine's defaults for a group member: no in-process
// write cache, which the engine refuses alone with a source whose
// partitions move (engine.ErrCacheNotShared).
func groupConfig() engine.Config {
	cfg := engine.Default()
	cfg.CacheSize = -1
	return cfg
}

func waitForModel(t testing.TB, g *semantics.Graph, wl *bench.Workload) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	wv, we := wl.Model.Snapshot()
	for {
		gv, ge := g.Snapshot()
		d := model.Diff(wv, we, gv, ge)
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the graph never reached the model:\n%s", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nothingLeft joins the group afresh: every record must have been committed.
func nothingLeft(t *testing.T, e env) {
	t.Helper()
	src, err := kafka.New(kafka.Config{Brokers: e.brokers, Topics: []string{e.topic}, Group: e.group}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	recs, _ := src.Fetch(ctx)
	if len(recs) > 0 {
		t.Fatalf("%d records were not committed, first at %s:%d", len(recs), recs[0].Pos.Partition, recs[0].Pos.Offset)
	}
}

func workload(t *testing.T) *bench.Workload {
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = 24, 4, 20, 5
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	return wl
}

func TestOneMember(t *testing.T) {
	kafkatest.OnBrokers(t, func(t *testing.T, kind string) {
		wl := workload(t)
		e := cluster(t, kind, wl)
		g := memgraph.New()
		letters := &dlq{}
		m := join(t, e, "", &memgraph.Sink{Graph: g}, letters)
		waitForModel(t, g, wl)
		m.stop(t)
		nothingLeft(t, e)
		if letters.n != 1 {
			t.Fatalf("%d dead letters, want the one poison record", letters.n)
		}
	})
}

// flaky fails every third transaction with a conflict, before applying it:
// rebalances then happen while batches are being retried.
type flaky struct {
	*memgraph.Sink
	mu sync.Mutex
	n  int
}

func (f *flaky) Apply(ctx context.Context, b *graft.Batch) error {
	f.mu.Lock()
	f.n++
	fail := f.n%3 == 0
	f.mu.Unlock()
	if fail {
		return graft.NewError(graft.Conflict, errors.New("ConcurrentModificationException (injected)"))
	}
	return f.Sink.Apply(ctx, b)
}

// Members join, one is killed without leaving, another joins mid-stream,
// while a third of the sink's transactions fail and are retried: rebalances
// move partitions, the killed member's uncommitted records are replayed by
// their new owner, and the final graph equals the model.
func TestMembersKilledAndAdded(t *testing.T) {
	kafkatest.OnBrokers(t, func(t *testing.T, kind string) {
		wl := workload(t)
		e := cluster(t, kind, wl)
		g := memgraph.New()
		sink := &flaky{Sink: &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxWrites: 5, MaxUnits: 200, MaxBytes: 1 << 20, Concurrency: 2}}}
		letters := &dlq{}
		a := join(t, e, "a", sink, letters)
		b := join(t, e, "b", sink, letters)
		time.Sleep(300 * time.Millisecond)
		b.kill()
		c := join(t, e, "c", sink, letters)
		waitForModel(t, g, wl)
		// The graph can be complete before b's partitions are reassigned (b
		// applied them and died before committing): wait past b's session
		// timeout so that a and c replay and commit them.
		time.Sleep(5 * time.Second)
		waitForModel(t, g, wl)
		a.stop(t)
		c.stop(t)
		nothingLeft(t, e)
		if letters.n < 1 {
			t.Fatalf("the poison record was not dead-lettered")
		}
	})
}

// The seed deployment's shape: a topic of 120 partitions keyed by
// organization, consumed by three members of one group at once.
func TestThreeMembersOn120Partitions(t *testing.T) {
	kafkatest.OnBrokers(t, func(t *testing.T, kind string) {
		wl := workload(t)
		e := clusterN(t, kind, wl, 120)
		g := memgraph.New()
		letters := &dlq{}
		var ms []*member
		for _, id := range []string{"a", "c", "d"} { // "b" is the one the tests kill at once
			ms = append(ms, join(t, e, id, &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxWrites: 20, MaxUnits: 500, MaxBytes: 1 << 20, Concurrency: 2}}, letters))
		}
		waitForModel(t, g, wl)
		for _, m := range ms {
			m.stop(t)
		}
		nothingLeft(t, e)
		if letters.n != 1 {
			t.Fatalf("%d dead letters, want the one poison record", letters.n)
		}
	})
}
