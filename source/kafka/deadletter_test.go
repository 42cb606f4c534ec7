package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/kafkatest"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/source/kafka"
)

// Dead letters go to a topic with the original key and value byte for byte,
// and headers that say why and where from; a record older than the max
// record age is dead-lettered as expired and not applied. The graph equals
// the model of the valid, fresh records.
func TestDeadLetterTopicAndExpiry(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topic), kfake.SeedTopics(1, "graph.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := model.New()
	var recs []*kgo.Record
	for i := range 40 {
		v := fmt.Appendf(nil, `{"ops":[{"op":"upsertVertex","id":"org:%d","label":"organization","props":{"n":%d}}]}`, i%8, i)
		w, err := graft.Decode(v, "", graft.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := want.ApplyBatch([]*graft.Write{w}); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i % 8)), Value: v})
	}
	poison := &kgo.Record{Key: []byte("org\x00bin\xff"), Value: []byte(`{"ops":[{"op":"upsertVertex","id":"org:1","label":"organization","props":{"n":"oops"}},{"op":"teleport"}]}`)}
	stale := &kgo.Record{Key: []byte("3"), Value: []byte(`{"ops":[{"op":"upsertVertex","id":"stale","label":"organization"}]}`), Timestamp: time.Now().Add(-48 * time.Hour)}
	recs = append(recs[:20], append([]*kgo.Record{poison, stale}, recs[20:]...)...)
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	dlq, err := kafka.NewDeadLetterTopic(kafka.Target{Brokers: brokers, Topic: "graph.dlq"}, kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()
	src, err := kafka.New(kafka.Config{Brokers: brokers, Topics: []string{topic}, Group: "graft"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := groupConfig()
	cfg.MaxRecordAge = 24 * time.Hour
	g := memgraph.New()
	e, err := engine.New(&memgraph.Sink{Graph: g}, dlq, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, src) }()

	letters := kafkatest.Records(t, brokers, "graph.dlq", 2)
	wv, we := want.Snapshot()
	deadline := time.Now().Add(30 * time.Second)
	for {
		gv, ge := g.Snapshot()
		d := model.Diff(wv, we, gv, ge)
		if d == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("graph never reached the model:\n%s", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	src.Close()
	if st := e.Stats().Snapshot(); st.Expired != 1 || st.DeadLetters != 2 {
		t.Fatalf("stats: %d expired, %d dead letters; want 1 and 2", st.Expired, st.DeadLetters)
	}

	byClass := map[string]*kgo.Record{}
	for _, l := range letters {
		byClass[kafkatest.Header(l, kafka.HeaderClass)] = l
	}
	for class, orig := range map[string]*kgo.Record{graft.Permanent.String(): poison, graft.ClassExpired: stale} {
		l := byClass[class]
		if l == nil {
			t.Fatalf("no dead letter of class %q among %d", class, len(letters))
		}
		if string(l.Key) != string(orig.Key) || string(l.Value) != string(orig.Value) {
			t.Errorf("%s: key/value %q %q, want the original %q %q", class, l.Key, l.Value, orig.Key, orig.Value)
		}
		want := map[string]string{
			kafka.HeaderTopic: topic, kafka.HeaderPartition: strconv.Itoa(int(orig.Partition)),
			kafka.HeaderOffset: strconv.FormatInt(orig.Offset, 10), kafka.HeaderAttempts: "1",
			kafka.HeaderRawBytes: strconv.Itoa(len(orig.Value)),
		}
		for k, v := range want {
			if got := kafkatest.Header(l, k); got != v {
				t.Errorf("%s: header %s = %q, want %q", class, k, got, v)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, kafkatest.Header(l, kafka.HeaderFirstFailure)); err != nil {
			t.Errorf("%s: %s: %v", class, kafka.HeaderFirstFailure, err)
		}
	}
	if m := kafkatest.Header(byClass["permanent"], kafka.HeaderMessage); !strings.Contains(m, "ops[0].props.n") && !strings.Contains(m, "ops[1].op") {
		t.Errorf("the message must name the field at fault: %q", m)
	}
	if m := kafkatest.Header(byClass["expired"], kafka.HeaderMessage); !strings.Contains(m, "over the max record age of 24h0m0s") {
		t.Errorf("expired message: %q", m)
	}
	if k := kafkatest.Header(byClass["expired"], kafka.HeaderWriteKey); k != "3" {
		t.Errorf("expired write key header %q, want the record key 3", k)
	}
}

// The group's lag counts what no member has committed; Committed says
// whether the group has committed past positions.
func TestGroupLag(t *testing.T) {
	kafkatest.OnBrokers(t, groupLag)
}

func groupLag(t *testing.T, kind string) {
	wl := workload(t)
	e := cluster(t, kind, wl)
	group, err := kafka.NewGroup(e.brokers, e.group, []string{e.topic}, kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	defer group.Close()
	g := memgraph.New()
	m := join(t, e, "", &memgraph.Sink{Graph: g}, &dlq{})
	waitForModel(t, g, wl)
	m.stop(t)
	ctx := context.Background()
	time.Sleep(1100 * time.Millisecond) // past the lag cache
	if lag, err := group.Lag(ctx); err != nil || lag != 0 {
		t.Fatalf("lag after everything was committed: %d %v", lag, err)
	}
	p, err := kafka.NewProducer(kafka.Target{Brokers: e.brokers, Topic: e.topic}, kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var values [][]byte
	for i := range 7 {
		values = append(values, fmt.Appendf(nil, `{"ops":[{"op":"upsertVertex","id":"late%d","label":"x"}]}`, i))
	}
	positions, err := p.Publish(ctx, values, []string{"a", "b", "c", "d", "e", "f", "g"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if lag, err := group.Lag(ctx); err != nil || lag != 7 {
		t.Fatalf("lag with 7 records nobody consumed: %d %v", lag, err)
	}
	if ok, err := group.Committed(ctx, positions); err != nil || ok {
		t.Fatalf("nothing consumed, but Committed = %v %v", ok, err)
	}
	m = join(t, e, "", &memgraph.Sink{Graph: g}, &dlq{})
	defer m.stop(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := group.Committed(ctx, positions)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the group never committed the 7 records")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := g.Vertex(ctx, "late6"); err != nil {
		t.Fatalf("committed but not in the graph: %v", err)
	}
}

// A letter from a source whose positions are not Kafka's (a Kinesis shard)
// gets the position header, and its source ref (the sequence number) in a
// header of its own; a Kafka letter gets topic, partition and offset.
func TestHeadersNameTheSource(t *testing.T) {
	get := func(hs []kgo.RecordHeader) map[string]string {
		m := map[string]string{}
		for _, h := range hs {
			m[h.Key] = string(h.Value)
		}
		return m
	}
	k := get(kafka.Headers(&graft.Letter{Class: "permanent", Position: graft.Position{Partition: "shardId-000000000001", Offset: 7},
		SourceRef: "49680455248393243114308786070759137333448008360102199314"}))
	if k[kafka.HeaderPosition] != "shardId-000000000001:7" || k[kafka.HeaderRef] != "49680455248393243114308786070759137333448008360102199314" || k[kafka.HeaderOffset] != "" {
		t.Fatalf("kinesis letter headers %v", k)
	}
	f := get(kafka.Headers(&graft.Letter{Class: "permanent", Position: graft.Position{Partition: "graph.writes/1", Offset: 502}}))
	if f[kafka.HeaderTopic] != "graph.writes" || f[kafka.HeaderPartition] != "1" || f[kafka.HeaderOffset] != "502" || f[kafka.HeaderRef] != "" {
		t.Fatalf("kafka letter headers %v", f)
	}
}
