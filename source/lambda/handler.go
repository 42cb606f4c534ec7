// Package lambda runs the engine on the batch of a Lambda invocation
// from a Kinesis or a Kafka (Amazon MSK, self-managed) event source mapping,
// and answers with a partial batch response: for each shard or partition,
// its first record that is not done, so that Lambda retries from there — the
// records before it are committed, and per-key order holds because nothing
// after a failed record of a shard or partition counts as done.
package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/source/kinesis/kpl"
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
	Letters graft.DeadLetters
	// Config is every invocation's engine. Its write cache is used only
	// when it is shared (SharedCache): invocations for other shards and
	// partitions run at the same time and can change an element one of
	// them cached, and a write eliminated on that stale fact would be lost.
	Config engine.Config
	// Margin is the time kept before the invocation's deadline to answer.
	Margin time.Duration
	// FailWhole answers an invocation with records not done by an error
	// instead of a partial batch response: Lambda then retries the whole
	// batch (the writes are idempotent and re-applied in order). For event
	// source mappings without ReportBatchItemFailures — which ignore a
	// partial batch response and would lose the records it names — such as
	// Kafka mappings in on-demand mode.
	FailWhole bool
}

var (
	_ graft.Source      = (*batch)(nil)
	_ graft.DeadLetters = (*recorder)(nil)
)

// Invoke handles a raw event: a Kinesis event ("Records" of eventSource
// aws:kinesis) or a Kafka event (eventSource aws:kafka or SelfManagedKafka).
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil {
		return nil, fmt.Errorf("event: %v", err)
	}
	var source string
	if raw, ok := top["eventSource"]; ok {
		json.Unmarshal(raw, &source)
	}
	switch {
	case source == "aws:kafka" || source == "SelfManagedKafka":
		var ev events.KafkaEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("kafka event: %v", err)
		}
		return h.HandleKafka(ctx, ev)
	case top["Records"] != nil:
		var ev events.KinesisEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("kinesis event: %v", err)
		}
		for _, r := range ev.Records {
			if r.EventSource != "aws:kinesis" {
				return nil, fmt.Errorf("event source %q: graft-lambda handles Kinesis (aws:kinesis) and Kafka (aws:kafka, SelfManagedKafka) events", r.EventSource)
			}
		}
		return h.Handle(ctx, ev)
	case source != "":
		return nil, fmt.Errorf("event source %q: graft-lambda handles Kinesis (aws:kinesis) and Kafka (aws:kafka, SelfManagedKafka) events", source)
	}
	return nil, errors.New("event: neither a Kinesis event (Records) nor a Kafka event (eventSource aws:kafka)")
}

// Handle runs a Kinesis batch. A user record's position is its shard and
// its index among the shard's user records in the batch.
func (h *Handler) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var recs []graft.Record
	seqs := map[string][]string{} // shard → sequence numbers, in batch order
	offsets := map[string][]int64{}
	var shards []string
	for _, r := range ev.Records {
		shard, _, _ := strings.Cut(r.EventID, ":")
		if _, ok := seqs[shard]; !ok {
			shards = append(shards, shard)
		}
		// A KPL aggregate is split into its user records, as the Kinesis
		// source splits it; each carries the aggregate's sequence number,
		// so a failure retries the aggregate from its start.
		subs, _ := kpl.Split(r.Kinesis.Data, r.Kinesis.PartitionKey, r.Kinesis.SequenceNumber)
		for _, sub := range subs {
			off := int64(len(seqs[shard]))
			seqs[shard] = append(seqs[shard], r.Kinesis.SequenceNumber)
			offsets[shard] = append(offsets[shard], off)
			recs = append(recs, graft.Record{Value: sub.Data, Key: sub.Key, Ref: sub.Ref,
				Pos: graft.Position{Partition: shard, Offset: off}, Arrived: r.Kinesis.ApproximateArrivalTimestamp.Time})
		}
	}
	firsts, err := h.run(ctx, recs, shards, offsets)
	if err != nil {
		return events.KinesisEventResponse{}, err
	}
	resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
	for _, f := range firsts {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: seqs[f.partition][f.index]})
	}
	if err := h.failWhole(len(firsts), func() string { return seqs[firsts[0].partition][firsts[0].index] }); err != nil {
		return events.KinesisEventResponse{}, err
	}
	return resp, nil
}

// KafkaEventResponse is the partial batch response of a Kafka event source
// mapping (ReportBatchItemFailures, provisioned mode): each failure names a
// partition and the offset Lambda resumes it from.
type KafkaEventResponse struct {
	BatchItemFailures []KafkaBatchItemFailure `json:"batchItemFailures"`
}

// KafkaBatchItemFailure is one partition's first record not done.
type KafkaBatchItemFailure struct {
	ItemIdentifier KafkaItem `json:"itemIdentifier"`
}

// KafkaItem names a record: "topic-partition" as in the event's records
// map, and its offset.
type KafkaItem struct {
	TopicPartition string `json:"topic-partition"`
	Offset         int64  `json:"offset"`
}

// HandleKafka runs a Kafka batch. Keys and values arrive base64-encoded; a
// record's position is its partition, named TOPIC/N as the Kafka source
// names it (so dead letters carry the topic, partition and offset), and its
// offset.
func (h *Handler) HandleKafka(ctx context.Context, ev events.KafkaEvent) (KafkaEventResponse, error) {
	var recs []graft.Record
	offsets := map[string][]int64{}
	eventKey := map[string]string{} // TOPIC/N → the event's "topic-partition" key
	var keys, parts []string
	for k := range ev.Records {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, r := range ev.Records[k] {
			p := r.Topic + "/" + strconv.FormatInt(r.Partition, 10)
			if _, ok := eventKey[p]; !ok {
				eventKey[p] = k
				parts = append(parts, p)
			}
			value, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				return KafkaEventResponse{}, fmt.Errorf("kafka record %s@%d: value is not base64: %v", k, r.Offset, err)
			}
			key, err := base64.StdEncoding.DecodeString(r.Key)
			if err != nil {
				return KafkaEventResponse{}, fmt.Errorf("kafka record %s@%d: key is not base64: %v", k, r.Offset, err)
			}
			offsets[p] = append(offsets[p], r.Offset)
			recs = append(recs, graft.Record{Value: value, Key: string(key), Pos: graft.Position{Partition: p, Offset: r.Offset}, Arrived: r.Timestamp.Time})
		}
	}
	firsts, err := h.run(ctx, recs, parts, offsets)
	if err != nil {
		return KafkaEventResponse{}, err
	}
	resp := KafkaEventResponse{BatchItemFailures: []KafkaBatchItemFailure{}}
	for _, f := range firsts {
		resp.BatchItemFailures = append(resp.BatchItemFailures, KafkaBatchItemFailure{ItemIdentifier: KafkaItem{TopicPartition: eventKey[f.partition], Offset: offsets[f.partition][f.index]}})
	}
	err = h.failWhole(len(firsts), func() string {
		return fmt.Sprintf("%s@%d", eventKey[firsts[0].partition], offsets[firsts[0].partition][firsts[0].index])
	})
	if err != nil {
		return KafkaEventResponse{}, err
	}
	return resp, nil
}

func (h *Handler) failWhole(n int, first func() string) error {
	if !h.FailWhole || n == 0 {
		return nil
	}
	return fmt.Errorf("%d shards or partitions not done, the first from record %s: the whole batch is retried (GRAFT_FAILURE_MODE=error)", n, first())
}

// notDone is a partition's first record not done (its index in the batch).
type notDone struct {
	partition string
	index     int64
}

// run applies the records with the engine and returns, for each partition
// in order, its first record not done: neither committed nor dead-lettered
// to Letters (without Letters, a dead letter is not done). offsets holds
// each partition's record offsets, in batch order.
func (h *Handler) run(ctx context.Context, recs []graft.Record, parts []string, offsets map[string][]int64) ([]notDone, error) {
	src := &batch{recs: recs}
	letters := &recorder{next: h.Letters}
	cfg := h.Config
	if cfg.SharedCache == nil {
		cfg.CacheSize = -1 // see Config
	}
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
		return nil, err
	}
	err = e.Run(runCtx, src)
	var fatal *engine.FatalError
	if errors.As(err, &fatal) {
		// Nothing of the batch may count as done: fail from each start.
		err = nil
		src.reset()
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, engine.ErrDrainTimeout) {
		return nil, err
	}
	var out []notDone
	for _, p := range parts {
		offs := offsets[p]
		// Everything at or below the acknowledged offset is committed or
		// dead-lettered.
		first := sort.Search(len(offs), func(i int) bool { return !src.done(p, offs[i]) })
		if h.Letters == nil {
			if d, ok := letters.first(p); ok {
				first = min(first, sort.Search(len(offs), func(i int) bool { return offs[i] >= d }))
			}
		}
		if first < len(offs) {
			out = append(out, notDone{p, int64(first)})
		}
	}
	return out, nil
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

// done reports whether the record at off is acknowledged.
func (b *batch) done(partition string, off int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.ack[partition]
	return ok && off <= v
}

func (b *batch) reset() {
	b.mu.Lock()
	b.ack = nil
	b.mu.Unlock()
}

// recorder notes the first dead-lettered record of each shard, and stores
// the letters in next when there is one.
type recorder struct {
	next      graft.DeadLetters
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
