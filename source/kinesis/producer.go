package kinesis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Entry is a record to put: its partition key (the write's key) and data.
type Entry struct {
	Key  string
	Data []byte
}

// Stored is where Kinesis stored a record.
type Stored struct {
	Shard, Seq string
}

// partitionKey is the Kinesis partition key of a write key: the key itself
// when Kinesis takes it (1 to 256 characters), else a digest of it, so that
// one key still maps to one shard. A write's own key, in its JSON, stays
// the ordering key (the engine reads it there).
func partitionKey(key string) string {
	switch n := utf8.RuneCountInString(key); {
	case n == 0:
		return "-"
	case n <= 256:
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Producer puts records on a stream, preserving per-key order.
type Producer struct {
	kc     *kinesis.Client
	stream string
	// Attempts bounds the tries of one record (default 10).
	Attempts int
}

// NewProducer connects to the stream of cfg (its region, endpoint and
// credentials).
func NewProducer(ctx context.Context, cfg Config) (*Producer, error) {
	ac, err := awsConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	kc := kinesis.NewFromConfig(ac, func(o *kinesis.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return &Producer{kc: kc, stream: cfg.Stream, Attempts: 10}, nil
}

// Ping checks that the stream exists.
func (p *Producer) Ping(ctx context.Context) error {
	_, err := p.kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(p.stream)})
	if err != nil {
		return fmt.Errorf("kinesis %s: %w", p.stream, err)
	}
	return nil
}

// Put stores the entries, in order per key. PutRecords does not order the
// records of one request, and fails records one by one, so a request holds
// at most one record per key: a key's next record is sent only once the
// previous one is stored, and a failed record is retried (with backoff)
// before any later record of its key. done is called for each entry, in
// order per key, with where it is stored or its error.
func (p *Producer) Put(ctx context.Context, entries []Entry, done func(i int, at Stored, err error)) error {
	queues := map[string][]int{} // key → indexes of its pending entries, in order
	var keys []string
	for i, e := range entries {
		if _, ok := queues[e.Key]; !ok {
			keys = append(keys, e.Key)
		}
		queues[e.Key] = append(queues[e.Key], i)
	}
	attempts := make([]int, len(entries))
	for len(keys) > 0 {
		// The head of each key's queue, up to PutRecords' 500 a request.
		var heads []int
		for _, k := range keys {
			if len(heads) == 500 {
				break
			}
			heads = append(heads, queues[k][0])
		}
		req := make([]types.PutRecordsRequestEntry, len(heads))
		for j, i := range heads {
			req[j] = types.PutRecordsRequestEntry{Data: entries[i].Data, PartitionKey: aws.String(partitionKey(entries[i].Key))}
		}
		out, err := p.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: req})
		worst := 0 // the most attempts of a record that failed this round
		for j, i := range heads {
			var rerr error
			switch {
			case err != nil:
				rerr = err
			case out.Records[j].ErrorCode != nil:
				rerr = fmt.Errorf("%s: %s", aws.ToString(out.Records[j].ErrorCode), aws.ToString(out.Records[j].ErrorMessage))
			}
			k := entries[i].Key
			if rerr != nil {
				attempts[i]++
				if attempts[i] < p.Attempts && ctx.Err() == nil {
					worst = max(worst, attempts[i])
					continue // stays at the head of its key's queue
				}
				// Given up: the key's later entries fail too (their order
				// would break).
				for _, rest := range queues[k] {
					done(rest, Stored{}, fmt.Errorf("not stored after %d attempts: %w", attempts[i], rerr))
				}
				queues[k] = nil
				continue
			}
			done(i, Stored{Shard: aws.ToString(out.Records[j].ShardId), Seq: aws.ToString(out.Records[j].SequenceNumber)}, nil)
			queues[k] = queues[k][1:]
		}
		next := keys[:0]
		for _, k := range keys {
			if len(queues[k]) > 0 {
				next = append(next, k)
			}
		}
		keys = next
		if worst > 0 {
			// Backoff grows with the tries of the records that keep failing.
			d := time.Duration(50<<min(worst-1, 6)) * time.Millisecond
			select {
			case <-time.After(d/2 + rand.N(d/2+1)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
