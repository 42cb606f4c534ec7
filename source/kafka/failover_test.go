package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/kafkaserver"
	"github.com/graftdb/graft/internal/memgraph"
)

// ordered notes, per key, the workload positions of the writes the sink
// applies: they must rise (a record applied twice, or a key's records out
// of order, shows).
type ordered struct {
	*memgraph.Sink
	pos  map[string]int // write id → its place in the workload
	mu   sync.Mutex
	last map[string]int
	bad  []string
}

func (o *ordered) Apply(ctx context.Context, b *graft.Batch) error {
	if err := o.Sink.Apply(ctx, b); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range b.Writes {
		p, ok := o.pos[w.ID]
		if !ok {
			continue
		}
		if last, seen := o.last[w.Key]; seen && p <= last {
			o.bad = append(o.bad, fmt.Sprintf("key %s: write %d applied after %d", w.Key, p, last))
		}
		o.last[w.Key] = p
	}
	return nil
}

// A three-node cluster (Kafka 4.1 in KRaft mode, each node a broker and a
// controller voter) and a 12-partition topic replicated three times
// (min.insync.replicas 2, acks=all). Half the workload is in the topic when
// two members start; once they applied some of it, the node that
// coordinates their group — and leads some of the topic's partitions — is
// killed -9, and the other half is produced while it is down. The group
// moves to a new coordinator, the partitions to new leaders; nothing is
// lost, applied twice or out of order per key, and nothing is left
// uncommitted.
func TestBrokerFailover(t *testing.T) {
	started := time.Now()
	c := kafkaserver.StartCluster(t, 3)
	defer c.Stop()
	t.Logf("three nodes ready in %v", time.Since(started).Round(100*time.Millisecond))
	wl := workload(t)
	// A session that outlives the failover (the controller takes 3 s to
	// fence a node here): the members keep their partitions, so nothing
	// is read twice. (With one shorter than that, the members lose their
	// partitions and read them again from the last commit, as
	// TestLostPartitionsAreNotApplied tests.)
	e := env{brokers: c.Brokers(), topic: topic + ".failover", group: "graft-failover", session: 30 * time.Second}
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	minISR := "2"
	if res, err := kadm.NewClient(adm).CreateTopic(ctx, 12, 3, map[string]*string{"min.insync.replicas": &minISR}, e.topic); err != nil || res.Err != nil {
		t.Fatalf("create topic: %v %v", err, res.Err)
	}
	produce := producer(t, e)
	half := len(wl.Writes) / 2
	produce(wl.Writes[:half])

	g := memgraph.New()
	sink := &ordered{Sink: &memgraph.Sink{Graph: g, Lim: graft.SinkLimits{MaxWrites: 5, MaxUnits: 200, MaxBytes: 1 << 20, Concurrency: 2}},
		pos: map[string]int{}, last: map[string]int{}}
	for i, w := range wl.Writes {
		sink.pos[w.ID] = i
	}
	a := join(t, e, "a", sink, &dlq{})
	c2 := join(t, e, "c", sink, &dlq{})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if v, _ := g.Snapshot(); len(v) > 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing applied before the failover")
		}
	}
	coords := kadm.NewClient(adm).FindGroupCoordinators(ctx, e.group)
	coord, ok := coords[e.group]
	if !ok || coord.Err != nil {
		t.Fatalf("group coordinator: %+v", coords)
	}
	topics, err := kadm.NewClient(adm).ListTopics(ctx, e.topic)
	if err != nil {
		t.Fatal(err)
	}
	leads := 0
	for _, p := range topics[e.topic].Partitions {
		if p.Leader == coord.NodeID {
			leads++
		}
	}
	if leads == 0 {
		t.Fatalf("node %d coordinates the group but leads none of the topic's partitions: its death would not move them", coord.NodeID)
	}
	down := c.Node(coord.NodeID)
	if err := down.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("killed node %d, the group's coordinator and the leader of %d partitions", coord.NodeID, leads)
	produce(wl.Writes[half:])
	t.Logf("the second half produced %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	waitForModel(t, g, wl)
	t.Logf("the graph equals the model %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	a.stop(t)
	c2.stop(t)
	nothingLeft(t, e)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.bad) > 0 {
		t.Fatalf("%d writes out of order or applied twice:\n%s", len(sink.bad), strings.Join(sink.bad, "\n"))
	}
}
