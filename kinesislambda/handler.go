// Package kinesislambda runs the engine on the batch of a Lambda invocation
// from a Kinesis event source mapping, and answers with a partial batch
// response: for each shard, the sequence number of its first record that is
// not done, so that Lambda retries from there — the records before it are
// committed, and per-key order holds because nothing after a failed record
// of a shard counts as done.
package kinesislambda

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
)

// Handler handles invocations. It is safe for the one-at-a-time calls of a
// Lambda execution environment.
type Handler struct {
	Sink graft.Sink
	// Letters, when set, stores dead letters durably (a Kafka topic, say):
	// a dead-lettered record then counts as done. When nil, a record the
	// engine would dead-letter is a failure: Lambda retries it and, after
	// the mapping's maximum retries, sends the batch to its on-failure
	// destination.
	Letters engine.DeadLetters
	Config  engine.Config
	// Margin is the time kept before the invocation's deadline to answer.
	Margin time.Duration
}

// record is one record of the batch: its shard and sequence number.
type record struct {
	shard string
	seq   string
}

// Handle runs one batch.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	src := &batch{}
	perShard := map[string][]record{}
	var shards []string
	for _, r := range ev.Records {
		shard, _, _ := strings.Cut(r.EventID, ":")
		if _, ok := perShard[shard]; !ok {
			shards = append(shards, shard)
		}
		off := int64(len(perShard[shard]))
		perShard[shard] = append(perShard[shard], record{shard: shard, seq: r.Kinesis.SequenceNumber})
		src.recs = append(src.recs, graft.Record{Value: r.Kinesis.Data, Key: r.Kinesis.PartitionKey,
			Pos: graft.Position{Partition: shard, Offset: off}, Arrived: r.Kinesis.ApproximateArrivalTimestamp.Time})
	}
	letters := &recorder{next: h.Letters}
	cfg := h.Config
	margin := h.Margin
	if margin <= 0 {
		margin = 2 * time.Second
	}
	runCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, dl.Add(-margin))
		defer cancel()
		cfg.DrainTimeout = max(time.Until(dl.Add(-margin))/4, 10*time.Millisecond)
	}
	e, err := engine.New(h.Sink, letters, cfg)
	if err != nil {
		return events.KinesisEventResponse{}, err
	}
	err = e.Run(runCtx, src)
	var fatal *engine.FatalError
	if errors.As(err, &fatal) {
		// Nothing of the batch may count as done: fail from each shard's start.
		err = nil
		src.reset()
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, engine.ErrDrainTimeout) {
		return events.KinesisEventResponse{}, err
	}
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for _, shard := range shards {
		first := src.acked(shard) + 1 // everything below is committed or dead-lettered
		if h.Letters == nil {
			if d, ok := letters.first(shard); ok && d < first {
				first = d
			}
		}
		if first < int64(len(perShard[shard])) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: perShard[shard][first].seq})
		}
	}
	return resp, nil
}

// batch is the invocation's records as a source; it remembers the
// acknowledged watermark of each shard.
type batch struct {
	recs    []graft.Record
	fetched bool
	mu      sync.Mutex
	ack     map[string]int64
}

func (b *batch) Fetch(context.Context) ([]graft.Record, error) {
	if b.fetched {
		return nil, io.EOF
	}
	b.fetched = true
	return b.recs, nil
}

func (b *batch) Ack(_ context.Context, pos graft.Position) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ack == nil {
		b.ack = map[string]int64{}
	}
	if cur, ok := b.ack[pos.Partition]; !ok || pos.Offset > cur {
		b.ack[pos.Partition] = pos.Offset
	}
	return nil
}

func (b *batch) Close() error { return nil }

func (b *batch) acked(shard string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.ack[shard]; ok {
		return v
	}
	return -1
}

func (b *batch) reset() {
	b.mu.Lock()
	b.ack = nil
	b.mu.Unlock()
}

// recorder notes the first dead-lettered record of each shard, and stores
// the letters in next when there is one.
type recorder struct {
	next      engine.DeadLetters
	mu        sync.Mutex
	firstDead map[string]int64
}

func (r *recorder) Append(ctx context.Context, ls []*graft.Letter) error {
	if r.next != nil {
		if err := r.next.Append(ctx, ls); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstDead == nil {
		r.firstDead = map[string]int64{}
	}
	for _, l := range ls {
		if cur, ok := r.firstDead[l.Position.Partition]; !ok || l.Position.Offset < cur {
			r.firstDead[l.Position.Partition] = l.Position.Offset
		}
	}
	return nil
}

func (r *recorder) first(shard string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.firstDead[shard]
	return v, ok
}
