package kinesislambda

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
)

type letters struct{ n int }

func (l *letters) Append(_ context.Context, ls []*graft.Letter) error { l.n += len(ls); return nil }

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
	l := &letters{}
	h = &Handler{Sink: &memgraph.Sink{Graph: memgraph.New()}, Letters: l, Config: engine.Default()}
	if resp, err := h.Handle(ctx, event(3)); err != nil || len(resp.BatchItemFailures) != 0 || l.n != 1 {
		t.Fatalf("with a dead-letter store: %+v %v (%d letters)", resp.BatchItemFailures, err, l.n)
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
