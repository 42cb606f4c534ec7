package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
)

// Dead-letter record headers. The record's key and value are the original
// record's key and value, byte for byte, so that re-producing a dead letter
// to its source topic (after a fix) replays it unchanged.
const (
	HeaderClass        = "graft.error.class"   // an error class, "quarantined" or "expired"
	HeaderMessage      = "graft.error.message" // the error, naming the field at fault
	HeaderTopic        = "graft.source.topic"
	HeaderPartition    = "graft.source.partition"
	HeaderOffset       = "graft.source.offset"
	HeaderPosition     = "graft.source.position" // non-Kafka sources: file:line, http, ...
	HeaderRef          = "graft.source.ref"      // the source's own name of the record (a Kinesis sequence number)
	HeaderAttempts     = "graft.attempts"
	HeaderWriteID      = "graft.write.id"
	HeaderWriteKey     = "graft.write.key"
	HeaderFirstFailure = "graft.first_failure" // RFC 3339, UTC
	HeaderLastFailure  = "graft.last_failure"
	HeaderRawBytes     = "graft.raw.bytes"     // size of the original record
	HeaderRawTruncated = "graft.raw.truncated" // "true" when the value holds only the record's start
)

// DeadLetterTopic stores dead letters in a Kafka topic. Append returns once
// every letter is acknowledged by all in-sync replicas: only then does the
// engine commit the source records past them.
type DeadLetterTopic struct {
	p *Producer
}

// NewDeadLetterTopic connects to the topic.
func NewDeadLetterTopic(t Target, sec Security, extra ...kgo.Opt) (*DeadLetterTopic, error) {
	p, err := NewProducer(t, sec, extra...)
	if err != nil {
		return nil, err
	}
	return &DeadLetterTopic{p: p}, nil
}

var _ graft.DeadLetters = (*DeadLetterTopic)(nil)

// String names the topic.
func (d *DeadLetterTopic) String() string { return d.p.String() }

// Append implements graft.DeadLetters.
func (d *DeadLetterTopic) Append(ctx context.Context, letters []*graft.Letter) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, l := range letters {
		value, err := l.Bytes()
		if err != nil {
			return fmt.Errorf("dead letter at %s:%d: %w", l.Position.Partition, l.Position.Offset, err)
		}
		var key []byte
		if l.SourceKey != "" {
			key = []byte(l.SourceKey)
		}
		wg.Add(1)
		d.p.Produce(ctx, key, value, Headers(l), func(_ graft.Position, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("dead-letter topic %s: %w", d.p.topic, errors.Join(errs...))
	}
	return nil
}

// Headers are the headers of a letter's record.
func Headers(l *graft.Letter) []kgo.RecordHeader {
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	out := []kgo.RecordHeader{h(HeaderClass, l.Class), h(HeaderMessage, l.Error)}
	if topic, p, ok := splitPartition(l.Position.Partition); ok {
		out = append(out, h(HeaderTopic, topic), h(HeaderPartition, strconv.Itoa(int(p))), h(HeaderOffset, strconv.FormatInt(l.Position.Offset, 10)))
	} else {
		out = append(out, h(HeaderPosition, l.Position.Partition+":"+strconv.FormatInt(l.Position.Offset, 10)))
	}
	if l.SourceRef != "" {
		out = append(out, h(HeaderRef, l.SourceRef))
	}
	out = append(out, h(HeaderAttempts, strconv.Itoa(l.Attempts)))
	if l.WriteID != "" {
		out = append(out, h(HeaderWriteID, l.WriteID))
	}
	if l.Key != "" {
		out = append(out, h(HeaderWriteKey, l.Key))
	}
	out = append(out, h(HeaderFirstFailure, l.FirstFailure.UTC().Format(time.RFC3339Nano)), h(HeaderLastFailure, l.LastFailure.UTC().Format(time.RFC3339Nano)),
		h(HeaderRawBytes, strconv.Itoa(l.RawBytes)))
	if l.RawTruncated {
		out = append(out, h(HeaderRawTruncated, "true"))
	}
	return out
}

// Close closes the producer (Append has waited for every letter).
func (d *DeadLetterTopic) Close() error {
	d.p.Close()
	return nil
}
