package kinesis

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/graftdb/graft"
)

// HTTP ingest into the stream (api.Publisher) and ?wait=committed
// (api.Waiter). A Kinesis sequence number does not fit a Position's int64
// offset, so the positions Publish returns carry "SHARD/SEQUENCE" in
// Partition; only Wait reads them.

// Publisher puts the records of an HTTP request on the stream, in order per
// key (Producer.Put).
type Publisher struct {
	p *Producer
}

// NewPublisher connects to the stream of cfg.
func NewPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	p, err := NewProducer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Publisher{p: p}, nil
}

// Publish implements api.Publisher. Records whose key's earlier record
// failed are not sent (order); the error names how many were not stored,
// and the request can be sent again whole (writes are idempotent).
func (p *Publisher) Publish(ctx context.Context, values [][]byte, keys []string) ([]graft.Position, error) {
	entries := make([]Entry, len(values))
	for i := range values {
		entries[i] = Entry{Key: keys[i], Data: values[i]}
	}
	positions := make([]graft.Position, len(values))
	var failed int
	var first error
	err := p.p.Put(ctx, entries, func(i int, at Stored, err error) {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
			return
		}
		positions[i] = graft.Position{Partition: at.Shard + "/" + at.Seq}
	})
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d of %d records not stored: %w", failed, len(values), first)
	}
	if err != nil {
		return nil, err
	}
	return positions, nil
}

// seqAtLeast compares two sequence numbers (decimal, no leading zeros).
func seqAtLeast(have, want string) bool {
	if have == shardEnd {
		return true
	}
	if len(have) != len(want) {
		return len(have) > len(want)
	}
	return have >= want
}

// Wait implements api.Waiter for positions Publish returned: each record's
// shard is checkpointed at or past its sequence number — by this instance
// (seen at once) or by whichever instance holds the shard's lease (its
// checkpoint reaches the table within a second).
func (s *Source) Wait(ctx context.Context, positions []graft.Position) error {
	pending := map[string]string{} // shard → highest sequence number waited for
	for _, p := range positions {
		shard, seq, ok := strings.Cut(p.Partition, "/")
		if !ok {
			return fmt.Errorf("kinesis: position %q is not SHARD/SEQUENCE", p.Partition)
		}
		if !seqAtLeast(pending[shard], seq) {
			pending[shard] = seq
		}
	}
	for {
		for shard, seq := range pending {
			s.mu.Lock()
			n := s.shards[shard]
			local := n != nil && (n.done || seqAtLeast(n.ackedSeq, seq))
			s.mu.Unlock()
			if local {
				delete(pending, shard)
			}
		}
		for shard, seq := range pending {
			out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.cfg.Table), ConsistentRead: aws.Bool(true), Key: s.key(shard),
				ProjectionExpression: aws.String("#cp"), ExpressionAttributeNames: names("#cp")})
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue
			}
			if cp := attrS(out.Item, "checkpoint"); cp != "" && seqAtLeast(cp, seq) {
				delete(pending, shard)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
