package kinesis_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/awstest"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/semantics"
	ksource "github.com/graftdb/graft/source/kinesis"
	"github.com/graftdb/graft/source/kinesis/kpl"
)

func put(t *testing.T, kc *kinesis.Client, stream string, ws []*graft.Write) {
	t.Helper()
	for i := 0; i < len(ws); i += 400 {
		var entries []types.PutRecordsRequestEntry
		for _, w := range ws[i:min(i+400, len(ws))] {
			entries = append(entries, types.PutRecordsRequestEntry{Data: w.AppendJSON(nil), PartitionKey: aws.String(w.Key)})
		}
		out, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put records: %v (%d failed)", err, aws.ToInt32(out.FailedRecordCount))
		}
	}
}

// run consumes the stream with the engine until want writes are committed,
// then closes the source (last checkpoints).
func run(t *testing.T, cfg ksource.Config, g *semantics.Graph, want int64) engine.Snapshot {
	t.Helper()
	src, err := ksource.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(&memgraph.Sink{Graph: g}, &memgraph.Letters{}, leaseConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src) }()
	deadline := time.Now().Add(60 * time.Second)
	for e.Stats().Snapshot().Committed < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes committed", e.Stats().Snapshot().Committed, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // acknowledgements reach the source
	cancel()
	if err := <-done; err != nil && !errors.Is(err, graft.ErrClosed) {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	return e.Stats().Snapshot()
}

// A 4-shard stream keyed by organization: the graph equals the model; a
// restart resumes after the checkpoints (nothing is read twice); after a
// shard split, the parent is finished before its children are read, and the
// writes put after the split land too.
func TestKinesisSource(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	ctx := context.Background()
	const stream = "graph-writes"
	awstest.CreateStream(t, kc, stream, 4)
	wl := workload(t, 12, 3, 15, 5)
	third := len(wl.Writes) / 3
	put(t, kc, stream, wl.Writes[:third])
	cfg := sourceConfig(t, stream, kEndpoint, dEndpoint, "&max_records=5")
	g := memgraph.New()
	st := run(t, cfg, g, int64(third))
	if st.Records != int64(third) {
		t.Fatalf("first run read %d records, want %d", st.Records, third)
	}

	// More records, then a split, then the rest: the restart reads only
	// the new records, and the split shard's old records (in the parent)
	// before its children's — full-state updates in the wrong order would
	// leave a wrong graph.
	put(t, kc, stream, wl.Writes[third:2*third])
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	first := shards.Shards[0]
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: first.ShardId,
		NewStartingHashKey: aws.String(halfOf(aws.ToString(first.HashKeyRange.StartingHashKey), aws.ToString(first.HashKeyRange.EndingHashKey)))}); err != nil {
		t.Fatal(err)
	}
	awstest.WaitStream(t, kc, stream)
	put(t, kc, stream, wl.Writes[2*third:])
	st = run(t, cfg, g, int64(len(wl.Writes)-third))
	if st.Records != int64(len(wl.Writes)-third) {
		t.Fatalf("the restart read %d records, want only the %d new ones", st.Records, len(wl.Writes)-third)
	}
	wv, we := wl.Model.Snapshot()
	gv, ge := g.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
}

// halfOf returns the middle of [lo, hi] as a decimal string (hash keys are
// 128-bit).
func halfOf(lo, hi string) string {
	a, _ := new(big.Int).SetString(lo, 10)
	b, _ := new(big.Int).SetString(hi, 10)
	m := new(big.Int).Add(a, b)
	return m.Rsh(m, 1).String()
}

// Records the Kinesis Producer Library aggregated (10 user records each,
// several keys) are split into their user records: every write is applied
// and the graph equals the model.
func TestKPLAggregates(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	ctx := context.Background()
	awstest.CreateStream(t, kc, "kpl", 2)
	wl := workload(t, 6, 3, 10, 4)
	// Aggregates keep each key's writes in order (the KPL aggregates per
	// shard, in order).
	for i := 0; i < len(wl.Writes); i += 10 {
		var keys []string
		var data [][]byte
		for _, w := range wl.Writes[i:min(i+10, len(wl.Writes))] {
			keys, data = append(keys, w.Key), append(data, w.AppendJSON(nil))
		}
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("kpl"), PartitionKey: aws.String("agg"),
			Data: kpl.Aggregate(keys, data)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := sourceConfig(t, "kpl", kEndpoint, dEndpoint, "")
	g := memgraph.New()
	st := run(t, cfg, g, int64(len(wl.Writes)))
	if st.Records != int64(len(wl.Writes)) || st.Invalid != 0 {
		t.Fatalf("%d records (%d invalid), want the %d user records", st.Records, st.Invalid, len(wl.Writes))
	}
	wv, we := wl.Model.Snapshot()
	gv, ge := g.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
}

// instance is a source and its engine running on a shared graph.
type instance struct {
	src  *ksource.Source
	eng  *engine.Engine
	stop func()
}

// slowSink applies one batch at a time and takes a while per write, so that
// records are in flight when a lease moves.
type slowSink struct {
	memgraph.Sink
	mu    sync.Mutex
	delay time.Duration
}

func (s *slowSink) Apply(ctx context.Context, b *graft.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	time.Sleep(s.delay * time.Duration(len(b.Writes)))
	return s.Sink.Apply(ctx, b)
}

func startInstance(t *testing.T, cfg ksource.Config, g *semantics.Graph) *instance {
	t.Helper()
	return startInstanceWith(t, cfg, g, leaseConfig(), 4*time.Millisecond)
}

// startInstanceWith starts an instance with an engine configuration and a
// sink delay per write.
func startInstanceWith(t *testing.T, cfg ksource.Config, g *semantics.Graph, ecfg engine.Config, delay time.Duration) *instance {
	t.Helper()
	src, err := ksource.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(&slowSink{Sink: memgraph.Sink{Graph: g}, delay: delay}, &memgraph.Letters{}, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src) }()
	in := &instance{src: src, eng: e}
	var once bool
	in.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, graft.ErrClosed) {
			t.Error(err)
		}
		if err := src.Close(); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(in.stop)
	return in
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two instances share a 4-shard stream: the first takes every lease, the
// second, started while the first is mid-stream, gets half of them by
// handoff (the owner drains each shard before it moves), so no record is
// read twice and the graph equals the model; the first one's graceful stop
// gives its leases to the second at once.
func TestLeasesShareAStream(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	const stream = "shared"
	awstest.CreateStream(t, kc, stream, 4)
	wl := workload(t, 16, 3, 12, 4)
	put(t, kc, stream, wl.Writes)
	cfg := sourceConfig(t, stream, kEndpoint, dEndpoint, "&max_records=10&lease_ttl=2s")
	g := memgraph.New()
	a := startInstance(t, cfg, g)
	if got := len(a.src.Owned()); got != 4 {
		t.Fatalf("the only instance holds %d leases, want 4", got)
	}
	waitFor(t, "the first instance to be mid-stream", func() bool { return a.eng.Stats().Snapshot().Committed > 0 })
	b := startInstance(t, cfg, g)
	if a.eng.Stats().Snapshot().Committed >= int64(len(wl.Writes)) {
		t.Fatal("the first instance finished before the second started: nothing was in flight to drain")
	}
	waitFor(t, "the leases to balance 2/2", func() bool { return len(a.src.Owned()) == 2 && len(b.src.Owned()) == 2 })
	committed := func() int64 { return a.eng.Stats().Snapshot().Committed + b.eng.Stats().Snapshot().Committed }
	waitFor(t, "every write committed", func() bool { return committed() >= int64(len(wl.Writes)) })
	if got := a.eng.Stats().Snapshot().Records + b.eng.Stats().Snapshot().Records; got != int64(len(wl.Writes)) {
		t.Fatalf("the two instances read %d records, want each of the %d once", got, len(wl.Writes))
	}
	if len(a.src.Owned()) != 2 || len(b.src.Owned()) != 2 {
		t.Fatalf("leases %v and %v, want 2 each", a.src.Owned(), b.src.Owned())
	}
	// The metrics tell the same story.
	for _, c := range []struct {
		in     *instance
		metric string
		want   float64
	}{
		{a, `lease_events_total{event="taken"}`, 4}, {a, `lease_events_total{event="handed_over"}`, 2}, {a, "leases_held", 2},
		{b, `lease_events_total{event="taken"}`, 2}, {b, `lease_events_total{event="taken_expired"}`, 0}, {b, "leases_held", 2},
		{b, `lease_events_total{event="lost"}`, 0},
	} {
		if got := metric(t, c.in.src, c.metric); got != c.want {
			t.Errorf("%s %s = %v, want %v", c.in.src.Worker(), c.metric, got, c.want)
		}
	}
	wv, we := wl.Model.Snapshot()
	gv, ge := g.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
	a.stop()
	waitFor(t, "the second instance to take the stopped one's leases", func() bool { return len(b.src.Owned()) == 4 })
}

// checkpoints reads the table's checkpoint per shard.
func checkpoints(t *testing.T, endpoint, table string) map[string]string {
	t.Helper()
	db := awstest.DynamoDB(t, endpoint)
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, it := range out.Items {
		id := it["shard"].(*ddbtypes.AttributeValueMemberS).Value
		if cp, ok := it["checkpoint"].(*ddbtypes.AttributeValueMemberS); ok {
			m[id] = cp.Value
		} else {
			m[id] = ""
		}
	}
	return m
}

// checkpoint_interval spaces the checkpoint writes: with a long interval
// nothing is written while running, and a graceful stop writes them all.
func TestCheckpointInterval(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "slow", 2)
	wl := workload(t, 4, 2, 5, 2)
	put(t, kc, "slow", wl.Writes)
	cfg := sourceConfig(t, "slow", kEndpoint, dEndpoint, "&checkpoint_interval=10m&lease_ttl=1s")
	in := startInstance(t, cfg, memgraph.New())
	waitFor(t, "every write committed", func() bool { return in.eng.Stats().Snapshot().Committed == int64(len(wl.Writes)) })
	time.Sleep(1500 * time.Millisecond) // several lease rounds
	for id, cp := range checkpoints(t, dEndpoint, "graft-slow") {
		if cp != "" {
			t.Fatalf("shard %s checkpointed at %s before the 10m interval", id, cp)
		}
	}
	in.stop()
	cps := checkpoints(t, dEndpoint, "graft-slow")
	if len(cps) != 2 {
		t.Fatalf("checkpoints %v, want both shards", cps)
	}
	for id, cp := range cps {
		if cp == "" {
			t.Fatalf("shard %s not checkpointed at the graceful stop", id)
		}
	}
}

// metric reads one of the source's metrics: "name" or `name{label="value"}`
// (without the graft_kinesis_ prefix).
func metric(t *testing.T, src *ksource.Source, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(src.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	base, label, _ := strings.Cut(strings.TrimSuffix(name, "}"), "{")
	for _, mf := range mfs {
		if mf.GetName() != "graft_kinesis_"+base {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if label == lp.GetName()+`="`+lp.GetValue()+`"` {
					match = true
				}
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// A lease taken from under its owner (as when the owner stalls past the
// TTL): the owner finds it lost at its next renewal and its engine drops the
// shard's records it has not sent to the sink, so they cannot land after
// the new owner's writes; the new owner replays from the checkpoint and the
// graph equals the model.
func TestLostLeaseDropsRecords(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "lost", 1)
	wl := workload(t, 6, 3, 10, 4)
	put(t, kc, "lost", wl.Writes)
	cfg := sourceConfig(t, "lost", kEndpoint, dEndpoint, "&lease_ttl=1s&worker=a")
	g := memgraph.New()
	slow := leaseConfig()
	slow.Concurrency, slow.MaxBatchWrites = 1, 5
	a := startInstanceWith(t, cfg, g, slow, 4*time.Millisecond)
	waitFor(t, "a to be mid-stream", func() bool { return a.eng.Stats().Snapshot().Committed > 20 })

	// b takes the lease without asking.
	db := awstest.DynamoDB(t, dEndpoint)
	if _, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String("graft-lost"),
		Key:                       map[string]ddbtypes.AttributeValue{"shard": &ddbtypes.AttributeValueMemberS{Value: a.src.Owned()[0]}},
		UpdateExpression:          aws.String("SET #o = :b, #c = #c + :one"),
		ExpressionAttributeNames:  map[string]string{"#o": "owner", "#c": "counter"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":b": &ddbtypes.AttributeValueMemberS{Value: "b"}, ":one": &ddbtypes.AttributeValueMemberN{Value: "1"}}}); err != nil {
		t.Fatal(err)
	}
	// a finds out at its next renewal; it drops what it holds, and once
	// its batch at the sink is done it applies nothing more. Then b
	// starts, as an instance would take a lease after the owner's TTL.
	waitFor(t, "a to find its lease lost", func() bool { return metric(t, a.src, `lease_events_total{event="lost"}`) == 1 })
	waitFor(t, "a to drop the rest", func() bool { return a.eng.Stats().Snapshot().Abandoned > 0 })
	settled := a.eng.Stats().Snapshot().Committed
	time.Sleep(300 * time.Millisecond)
	if c := a.eng.Stats().Snapshot().Committed; c > settled+int64(slow.MaxBatchWrites) {
		t.Fatalf("a committed %d more writes after dropping the shard's records (at most the batch at the sink: %d)", c-settled, slow.MaxBatchWrites)
	}
	cfg.Worker = "b"
	b := startInstanceWith(t, cfg, g, leaseConfig(), 0)
	deadline := time.Now().Add(60 * time.Second)
	for {
		wv, we := wl.Model.Snapshot()
		gv, ge := g.Snapshot()
		d := model.Diff(wv, we, gv, ge)
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("graph differs from the model (a %+v, b %+v, b holds %v):\n%.2000s", a.eng.Stats().Snapshot(), b.eng.Stats().Snapshot(), b.src.Owned(), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The graph can match before b's engine has counted the batch that
	// made it so: wait for the count too.
	waitFor(t, "b to count its commits", func() bool {
		return a.eng.Stats().Snapshot().Committed+b.eng.Stats().Snapshot().Committed >= int64(len(wl.Writes))
	})
	sa, sb := a.eng.Stats().Snapshot(), b.eng.Stats().Snapshot()
	if sa.Abandoned == 0 || sa.Committed >= int64(len(wl.Writes)) {
		t.Fatalf("a committed %d and dropped %d of %d: want the rest dropped once the lease was lost", sa.Committed, sa.Abandoned, len(wl.Writes))
	}
	if sb.Committed+sa.Committed < int64(len(wl.Writes)) {
		t.Fatalf("a %d + b %d committed, want at least the %d writes", sa.Committed, sb.Committed, len(wl.Writes))
	}
	t.Logf("a committed %d and dropped %d; b replayed from the checkpoint and committed %d", sa.Committed, sa.Abandoned, sb.Committed)
}

// workload is the fleet workload at a size, with its model.
func workload(t *testing.T, orgs, devices, software, perDevice int) *bench.Workload {
	t.Helper()
	seed := bench.DefaultFleet()
	seed.Orgs, seed.DevicesPerOrg, seed.SoftwarePerOrg, seed.SoftwarePerDevice = orgs, devices, software, perDevice
	wl, err := bench.NewWorkload(seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	return wl
}

// sourceConfig is the source's configuration for a stream on the emulators,
// with extra URL parameters ("&name=value…").
func sourceConfig(t *testing.T, stream, kEndpoint, dEndpoint, params string) ksource.Config {
	t.Helper()
	cfg, err := ksource.ParseURL("kinesis://" + stream + "?region=" + awstest.Region + "&endpoint=" + kEndpoint + "&dynamodb_endpoint=" + dEndpoint + params)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AccessKey, cfg.SecretKey = awstest.AccessKey, awstest.SecretKey
	return cfg
}

// A dead letter names its record in the stream: the sequence number, and
// for a user record of a KPL aggregate its index in the aggregate.
func TestDeadLettersNameTheRecord(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "refs", 1)
	good := []byte(`{"key":"k","ops":[{"op":"upsertVertex","id":"v","label":"x"}]}`)
	bad := []byte(`{"key":"k","ops":[{"op":"explode"}]}`)
	var seqs []string
	for _, data := range [][]byte{good, bad, kpl.Aggregate([]string{"k", "k"}, [][]byte{good, bad})} {
		out, err := kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("refs"), PartitionKey: aws.String("k"), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	src, err := ksource.New(context.Background(), sourceConfig(t, "refs", kEndpoint, dEndpoint, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dl := &memgraph.Letters{}
	e, err := engine.New(&memgraph.Sink{Graph: memgraph.New()}, dl, leaseConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src) }()
	waitFor(t, "the two letters", func() bool { return len(dl.All()) == 2 })
	cancel()
	<-done
	got := dl.All()
	refs := map[string]bool{got[0].SourceRef: true, got[1].SourceRef: true}
	if !refs[seqs[1]] || !refs[seqs[2]+"/1"] {
		t.Fatalf("letters name %v; want %s and %s/1", refs, seqs[1], seqs[2])
	}
}

// "Caught up" means caught up: shards held by another instance count as
// behind unless that instance said at its last renewal, recently, that it
// had read them to the tip; shards whose owner stopped renewing count too.
// Before, an instance counted only its own shards, and two live instances
// said 0 while a dead one's shards were read by nobody.
func TestLagCountsShardsHeldElsewhere(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "elsewhere", 2)
	wl := workload(t, 4, 2, 8, 3)
	put(t, kc, "elsewhere", wl.Writes)
	// y holds both shards and has never read them (it died at once).
	cfg := sourceConfig(t, "elsewhere", kEndpoint, dEndpoint, "&lease_ttl=3s&worker=y")
	g := memgraph.New()
	y := startInstance(t, cfg, g)
	waitFor(t, "y to hold both shards", func() bool { return len(y.src.Owned()) == 2 })
	shards := y.src.Owned()
	y.stop()
	db := awstest.DynamoDB(t, dEndpoint)
	for _, id := range shards {
		renewAs(t, db, "graft-elsewhere", id, "y", map[string]ddbtypes.AttributeValue{"behind": nil})
	}
	cfg.Worker = "b"
	b := startInstance(t, cfg, g)
	waitFor(t, "b to scan the lease table", func() bool { return metric(t, b.src, "shards_behind") > 0 })
	if lag, _ := b.src.Lag(context.Background()); lag != 2 || len(b.src.Owned()) != 0 {
		t.Fatalf("b holds %v, lag %d: want 0 held and both of y's shards behind", b.src.Owned(), lag)
	}
	// Once y's leases expire b takes them, reads everything, and only then
	// says it has caught up.
	waitFor(t, "b to catch up", func() bool {
		lag, _ := b.src.Lag(context.Background())
		return lag == 0 && b.eng.Stats().Snapshot().InFlight() == 0 // what /v1/status calls pending
	})
	wv, we := wl.Model.Snapshot()
	gv, ge := g.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("lag 0 while the graph lacks records:\n%.1000s", d)
	}
}

// An owner's last word ("read to the tip, all checkpointed") is trusted for
// two renewal periods; if it died just after, records put since were read
// by nobody while the other instances said 0 for up to 2/3 of the lease
// TTL. A shard held elsewhere now counts as caught up only if it holds
// nothing after what its owner said it read (a one-record probe).
func TestLagProbesShardsWhoseOwnerSaidCaughtUp(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "probed", 2)
	wl := workload(t, 4, 2, 8, 3)
	put(t, kc, "probed", wl.Writes)
	// y reads everything and checkpoints it, then stops. A lease TTL far
	// longer than the test's waits: y's word stays recent throughout.
	cfg := sourceConfig(t, "probed", kEndpoint, dEndpoint, "&lease_ttl=5m&checkpoint_interval=100ms&worker=y")
	g := memgraph.New()
	y := startInstance(t, cfg, g)
	waitFor(t, "y to hold both shards and read them", func() bool {
		lag, _ := y.src.Lag(context.Background())
		return len(y.src.Owned()) == 2 && lag == 0 && y.eng.Stats().Snapshot().InFlight() == 0
	})
	shards := y.src.Owned()
	db := awstest.DynamoDB(t, dEndpoint)
	checkpoint := func(id string) string {
		item, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("graft-probed"),
			Key: map[string]ddbtypes.AttributeValue{"shard": &ddbtypes.AttributeValueMemberS{Value: id}}, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		if cp, ok := item.Item["checkpoint"].(*ddbtypes.AttributeValueMemberS); ok {
			return cp.Value
		}
		return ""
	}
	waitFor(t, "y to checkpoint both shards", func() bool { return checkpoint(shards[0]) != "" && checkpoint(shards[1]) != "" })
	y.stop()
	// Its lease items now say what a live y that had caught up says at a
	// renewal (read = its checkpoint), as if it had died just after.
	for _, id := range shards {
		renewAs(t, db, "graft-probed", id, "y", map[string]ddbtypes.AttributeValue{
			"behind": &ddbtypes.AttributeValueMemberN{Value: "0"}, "read": &ddbtypes.AttributeValueMemberS{Value: checkpoint(id)}})
	}
	cfg.Worker = "b"
	b := startInstance(t, cfg, g)
	waitFor(t, "b to scan the lease table", func() bool { return metric(t, b.src, "shards_unowned") == 0 })
	if lag, _ := b.src.Lag(context.Background()); lag != 0 || len(b.src.Owned()) != 0 {
		t.Fatalf("b holds %v, lag %d: want nothing held and lag 0 (y's word is true: nothing after what it read)", b.src.Owned(), lag)
	}
	// y is dead; records arrive on its shards.
	more := workload(t, 5, 2, 8, 3).Writes
	put(t, kc, "probed", more)
	waitFor(t, "b to count y's shards behind", func() bool {
		lag, _ := b.src.Lag(context.Background())
		return lag == 2
	})
}

// renewAs writes a shard's lease item as owner's renewal would: owner,
// counter moved on, updated now, and the word's attributes (a nil value
// removes the attribute).
func renewAs(t *testing.T, db *dynamodb.Client, table, shard, owner string, word map[string]ddbtypes.AttributeValue) {
	t.Helper()
	names := map[string]string{"#o": "owner", "#c": "counter", "#u": "updated"}
	values := map[string]ddbtypes.AttributeValue{":owner": &ddbtypes.AttributeValueMemberS{Value: owner},
		":zero": &ddbtypes.AttributeValueMemberN{Value: "0"}, ":one": &ddbtypes.AttributeValueMemberN{Value: "1"},
		":now": &ddbtypes.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)}}
	set, remove := "SET #o = :owner, #c = if_not_exists(#c, :zero) + :one, #u = :now", ""
	i := 0
	for attr, v := range word {
		i++
		n := fmt.Sprintf("#w%d", i)
		names[n] = attr
		if v == nil {
			remove += ", " + n
			continue
		}
		values[":w"+n[2:]] = v
		set += ", " + n + " = :w" + n[2:]
	}
	expr := set
	if remove != "" {
		expr += " REMOVE " + remove[2:]
	}
	if _, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:              map[string]ddbtypes.AttributeValue{"shard": &ddbtypes.AttributeValueMemberS{Value: shard}},
		UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values}); err != nil {
		t.Fatal(err)
	}
}

// leaseConfig is the engine's defaults for an instance sharing the stream:
// no in-process write cache, which the engine refuses alone with a source
// whose shards move (engine.ErrCacheNotShared).
func leaseConfig() engine.Config {
	cfg := engine.Default()
	cfg.CacheSize = -1
	return cfg
}
