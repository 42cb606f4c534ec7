package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
)

// Producer writes records to one topic. It is idempotent with acks=all
// (franz-go's defaults, set explicitly): a record is acknowledged once every
// in-sync replica has it, and a retried produce never duplicates or
// reorders. Records are partitioned by key with Kafka's murmur2 hash, as the
// Java client does, so Graft and Java producers agree on where a key goes.
type Producer struct {
	cl     *kgo.Client
	target Target
	topic  string
	sec    Security
}

// NewProducer connects to the target's brokers.
func NewProducer(t Target, sec Security, extra ...kgo.Opt) (*Producer, error) {
	so, err := sec.opts()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(t.Brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	if t.Topic != "" { // empty: every record names its topic (ProduceTo)
		opts = append(opts, kgo.DefaultProduceTopic(t.Topic))
	}
	opts = append(opts, so...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", t, err)
	}
	return &Producer{cl: cl, target: t, topic: t.Topic, sec: sec}, nil
}

// Topic is the topic written.
func (p *Producer) Topic() string { return p.topic }

// Ping checks that the brokers answer and the topic exists (a producer
// would otherwise retry a missing topic until its delivery timeout).
func (p *Producer) Ping(ctx context.Context) error {
	topics, err := kadm.NewClient(p.cl).ListTopics(ctx, p.topic)
	if err != nil {
		return fmt.Errorf("kafka %s: %w", p.target, p.sec.explain(err))
	}
	if !topics.Has(p.topic) {
		return fmt.Errorf("kafka %s: topic %q does not exist (create it first)", p.target, p.topic)
	}
	if err := topics[p.topic].Err; err != nil {
		return fmt.Errorf("kafka %s: %w", p.target, err)
	}
	return nil
}

// Produce sends one record asynchronously; done is called once it is stored
// (with its position) or has failed. It blocks while the client's buffer is
// full, which bounds memory however fast the input is.
func (p *Producer) Produce(ctx context.Context, key, value []byte, headers []kgo.RecordHeader, done func(graft.Position, error)) {
	r := &kgo.Record{Key: key, Value: value, Headers: headers}
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		done(graft.Position{Partition: Partition(r.Topic, r.Partition), Offset: r.Offset}, err)
	})
}

// ProduceTo is Produce to another topic than the producer's.
func (p *Producer) ProduceTo(ctx context.Context, topic string, key, value []byte, done func(graft.Position, error)) {
	r := &kgo.Record{Topic: topic, Key: key, Value: value}
	p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
		done(graft.Position{Partition: Partition(r.Topic, r.Partition), Offset: r.Offset}, err)
	})
}

// Publish stores the records and returns their positions, in order; keys[i]
// is the key of values[i] (nil keys: no key). It implements the HTTP API's
// Publisher.
func (p *Producer) Publish(ctx context.Context, values [][]byte, keys []string) ([]graft.Position, error) {
	out := make([]graft.Position, len(values))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	wg.Add(len(values))
	for i, v := range values {
		var key []byte
		if keys != nil && keys[i] != "" {
			key = []byte(keys[i])
		}
		p.Produce(ctx, key, v, nil, func(pos graft.Position, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("produce to %s: %w", p.topic, err)
				}
				mu.Unlock()
				return
			}
			out[i] = pos
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// Flush waits for every record produced so far.
func (p *Producer) Flush(ctx context.Context) error { return p.cl.Flush(ctx) }

// Close flushes nothing: call Flush first.
func (p *Producer) Close() { p.cl.Close() }

// String names the target.
func (p *Producer) String() string { return p.target.String() }
