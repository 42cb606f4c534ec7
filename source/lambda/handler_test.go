package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/semantics"
	"github.com/graftdb/graft/source/kinesis/kpl"
)

// event builds a batch: shard A's records then shard B's; a poison record
// at index poisonA of shard A (-1: none).
func event(poisonA int) events.KinesisEvent {
	var ev events.KinesisEvent
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		for i := range 6 {
			data := fmt.Appendf(nil, `{"key":"%s-k%d","ops":[{"op":"upsertVertex","id":"%s-v%d","label":"x","props":{"n":%d}}]}`, shard, i%2, shard, i, i)
			if shard == "shardId-000000000000" && i == poisonA {
				data = []byte(`{"ops":[{"op":"explode"}]}`)
			}
			ev.Records = append(ev.Records, events.KinesisEventRecord{EventID: fmt.Sprintf("%s:%d", shard, 1000+i),
				Kinesis: events.KinesisRecord{Data: data, PartitionKey: "k", SequenceNumber: fmt.Sprintf("%s-seq-%d", shard, i)}})
		}
	}
	return ev
}

func TestPartialBatchResponse(t *testing.T) {
	ctx := context.Background()
	// A poison record without a dead-letter store: the batch fails from it
	// on its shard, the other shard is done.
	g := memgraph.New()
	h := &Handler{Sink: &memgraph.Sink{Graph: g}, Config: engine.Default()}
	resp, err := h.Handle(ctx, event(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "shardId-000000000000-seq-3" {
		t.Fatalf("failures %+v, want shard 0 from its record 3", resp.BatchItemFailures)
	}
	for _, id := range []string{"shardId-000000000000-v2", "shardId-000000000001-v5"} {
		if _, err := g.Vertex(ctx, id); err != nil {
			t.Fatalf("%s: %v (records before the failure are committed)", id, err)
		}
	}
	// With a dead-letter store the poison record is done: no failure.
	l := &memgraph.Letters{}
	h = &Handler{Sink: &memgraph.Sink{Graph: memgraph.New()}, Letters: l, Config: engine.Default()}
	if resp, err := h.Handle(ctx, event(3)); err != nil || len(resp.BatchItemFailures) != 0 || len(l.All()) != 1 {
		t.Fatalf("with a dead-letter store: %+v %v (%d letters)", resp.BatchItemFailures, err, len(l.All()))
	}
	// A fatal sink error: every shard fails from its first record.
	h = &Handler{Sink: fatalSink{}, Config: engine.Default()}
	resp, err = h.Handle(ctx, event(-1))
	if err != nil || len(resp.BatchItemFailures) != 2 || resp.BatchItemFailures[0].ItemIdentifier != "shardId-000000000000-seq-0" ||
		resp.BatchItemFailures[1].ItemIdentifier != "shardId-000000000001-seq-0" {
		t.Fatalf("fatal sink: %+v %v", resp.BatchItemFailures, err)
	}
	// Out of time: a sink that never answers; the handler answers before the
	// deadline with every shard failing from its first record.
	h = &Handler{Sink: &slowSink{}, Config: engine.Default(), Margin: 200 * time.Millisecond}
	dctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err = h.Handle(dctx, event(-1))
	if err != nil || len(resp.BatchItemFailures) != 2 || time.Since(start) > 700*time.Millisecond {
		t.Fatalf("out of time: %+v %v after %v", resp.BatchItemFailures, err, time.Since(start))
	}
}

type fatalSink struct{}

func (fatalSink) Apply(context.Context, *graft.Batch) error {
	return graft.NewError(graft.Fatal, errors.New("AccessDeniedException"))
}
func (fatalSink) Limits() graft.SinkLimits   { return graft.SinkLimits{} }
func (fatalSink) Ping(context.Context) error { return nil }
func (fatalSink) Close() error               { return nil }

type slowSink struct{ fatalSink }

func (*slowSink) Apply(ctx context.Context, _ *graft.Batch) error {
	<-ctx.Done()
	return graft.NewError(graft.Transient, ctx.Err())
}

// goodWrites decodes the records' values in batch order, leaving out the
// ones the wire format refuses.
func goodWrites(t *testing.T, values [][]byte) []*graft.Write {
	t.Helper()
	var out []*graft.Write
	for _, v := range values {
		if w, err := graft.Decode(v, "", graft.DefaultLimits); err == nil {
			out = append(out, w)
		}
	}
	return out
}

func modelOf(t *testing.T, ws []*graft.Write) *model.Graph {
	t.Helper()
	m := model.New()
	for _, w := range ws {
		if err := m.ApplyWrite(w); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// invokeRecorded decodes a recorded event into ev and invokes a fresh
// handler, on an empty graph, with it.
func invokeRecorded(t *testing.T, file string, ev any) (*Handler, *semantics.Graph, any, json.RawMessage) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, ev); err != nil {
		t.Fatal(err)
	}
	g := memgraph.New()
	h := &Handler{Sink: &memgraph.Sink{Graph: g}, Config: engine.Default()}
	out, err := h.Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return h, g, out, raw
}

// A Kinesis event in the format Lambda delivers (testdata, base64 data,
// eventID SHARD:SEQ) with a poison record in the middle of shard 0: the
// answer names the poison's sequence number; Lambda's retry (shard 0 from
// there) with a dead-letter store finishes the batch, and the graph equals
// the model of every good record, applied in order.
func TestKinesisEventJSON(t *testing.T) {
	var ev events.KinesisEvent
	h, g, out, raw := invokeRecorded(t, "testdata/kinesis-event.json", &ev)
	resp := out.(events.KinesisEventResponse)
	poison := ev.Records[3]
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != poison.Kinesis.SequenceNumber {
		t.Fatalf("failures %+v, want shard 0 from its poison record %s", resp.BatchItemFailures, poison.Kinesis.SequenceNumber)
	}
	// Lambda's retry: shard 0 from the poison record on.
	retry := events.KinesisEvent{Records: ev.Records[3:6]}
	l := &memgraph.Letters{}
	h.Letters = l
	if resp, err := h.Handle(context.Background(), retry); err != nil || len(resp.BatchItemFailures) != 0 || len(l.All()) != 1 {
		t.Fatalf("retry with a dead-letter store: %+v %v (%d letters)", resp.BatchItemFailures, err, len(l.All()))
	}
	// The letter names the record in the stream: its shard and sequence number.
	if lt := l.All()[0]; lt.SourceRef != poison.Kinesis.SequenceNumber || lt.Position.Partition != "shardId-000000000000" {
		t.Fatalf("letter at %+v ref %q, want shard 0 and the poison's sequence number", lt.Position, lt.SourceRef)
	}
	var values [][]byte
	for _, r := range ev.Records {
		values = append(values, r.Kinesis.Data)
	}
	conformance.CheckModel(t, g, modelOf(t, goodWrites(t, values)))

	// GRAFT_FAILURE_MODE=error: the invocation fails whole instead.
	h = &Handler{Sink: &memgraph.Sink{Graph: memgraph.New()}, Config: engine.Default(), FailWhole: true}
	if _, err := h.Invoke(context.Background(), raw); err == nil || !strings.Contains(err.Error(), poison.Kinesis.SequenceNumber) {
		t.Fatalf("fail-whole mode: %v, want an error naming the poison record", err)
	}
}

// The same with a Kafka (MSK) event: base64 keys and values, an offset gap;
// the answer names the poison record's topic-partition and offset.
func TestKafkaEventJSON(t *testing.T) {
	var ev events.KafkaEvent
	h, g, out, _ := invokeRecorded(t, "testdata/kafka-event.json", &ev)
	resp := out.(KafkaEventResponse)
	poison := ev.Records["graph.writes-1"][2]
	want := KafkaItem{TopicPartition: "graph.writes-1", Offset: poison.Offset}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != want {
		t.Fatalf("failures %+v, want %+v", resp.BatchItemFailures, want)
	}
	b, _ := json.Marshal(resp)
	if !strings.Contains(string(b), `{"itemIdentifier":{"topic-partition":"graph.writes-1","offset":`) {
		t.Fatalf("response JSON %s", b)
	}
	retry := events.KafkaEvent{EventSource: "aws:kafka", Records: map[string][]events.KafkaRecord{"graph.writes-1": ev.Records["graph.writes-1"][2:]}}
	l := &memgraph.Letters{}
	h.Letters = l
	if resp, err := h.HandleKafka(context.Background(), retry); err != nil || len(resp.BatchItemFailures) != 0 || len(l.All()) != 1 {
		t.Fatalf("retry with a dead-letter store: %+v %v (%d letters)", resp.BatchItemFailures, err, len(l.All()))
	}
	// The letter names the record as the Kafka source would: TOPIC/N and
	// its offset (a dead-letter topic's headers then carry them).
	if pos := l.All()[0].Position; pos != (graft.Position{Partition: "graph.writes/1", Offset: poison.Offset}) {
		t.Fatalf("letter at %+v, want graph.writes/1 at %d", pos, poison.Offset)
	}
	var values [][]byte
	for _, p := range []string{"graph.writes-0", "graph.writes-1"} {
		for _, r := range ev.Records[p] {
			v, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			values = append(values, v)
		}
	}
	conformance.CheckModel(t, g, modelOf(t, goodWrites(t, values)))
}

// Events the handler does not take are refused by name.
func TestInvokeRefuses(t *testing.T) {
	h := &Handler{Sink: &memgraph.Sink{Graph: memgraph.New()}, Config: engine.Default()}
	for ev, want := range map[string]string{
		`{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`:    `"aws:sqs"`,
		`{"eventSource":"aws:rabbitmq","rmqMessagesByQueue":{}}`: `"aws:rabbitmq"`,
		`{"hello":"world"}`: "neither a Kinesis event",
		`{"Records":[`:      "event:",
	} {
		if _, err := h.Invoke(context.Background(), json.RawMessage(ev)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %s", ev, err, want)
		}
	}
}

// A Kinesis event whose records the KPL aggregated: the handler splits each
// aggregate into its user records, as the Kinesis source does, so every
// write of it is applied (before the split, an aggregate reached the decoder
// as one opaque record and was dead-lettered). A poison user record inside
// an aggregate fails the batch from the aggregate's sequence number, so that
// Lambda retries the whole aggregate.
func TestKinesisAggregatedRecords(t *testing.T) {
	ctx := context.Background()
	write := func(key, id string, n int) []byte {
		return fmt.Appendf(nil, `{"key":%q,"ops":[{"op":"upsertVertex","id":%q,"label":"x","props":{"n":%d}}]}`, key, id, n)
	}
	var ev events.KinesisEvent
	add := func(seq string, data []byte) {
		var r events.KinesisEventRecord
		r.EventSource, r.EventID = "aws:kinesis", "shardId-000000000000:"+seq
		r.Kinesis.SequenceNumber, r.Kinesis.PartitionKey, r.Kinesis.Data = seq, "outer", data
		ev.Records = append(ev.Records, r)
	}
	add("100", write("a", "plain", 1))
	add("200", kpl.Aggregate([]string{"a", "b", "a"}, [][]byte{write("a", "v1", 1), write("b", "v2", 2), write("a", "v1", 3)}))
	add("300", write("b", "after", 4))
	g := memgraph.New()
	h := &Handler{Sink: &memgraph.Sink{Graph: g}, Config: engine.Default()}
	resp, err := h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %+v, err %v", resp.BatchItemFailures, err)
	}
	want := map[string]int64{"plain": 1, "v1": 3, "v2": 2, "after": 4}
	for id, n := range want {
		v, err := g.Vertex(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v (a user record of an aggregate was not applied)", id, err)
		}
		if got := v.Props["n"].Int(); got != n {
			t.Fatalf("%s.n = %v, want %d (user records applied out of order)", id, v.Props["n"], n)
		}
	}
	// A poison user record in the aggregate, no dead-letter store: the
	// batch fails from the aggregate's sequence number.
	ev.Records[1].Kinesis.Data = kpl.Aggregate([]string{"a", "b"}, [][]byte{write("a", "w1", 1), []byte(`{"ops":[{"op":"explode"}]}`)})
	h = &Handler{Sink: &memgraph.Sink{Graph: memgraph.New()}, Config: engine.Default()}
	resp, err = h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "200" {
		t.Fatalf("poison in an aggregate: failures %+v, err %v; want the aggregate 200", resp.BatchItemFailures, err)
	}
}
