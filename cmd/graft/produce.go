package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/source/file"
	"github.com/graftdb/graft/source/kafka"
	"github.com/graftdb/graft/source/kinesis"
)

const produceAbout = `
Produces writes in the wire format (docs/wire-format.md), one JSON object per
line, from FILE or from stdin ("-" or no argument), to a Kafka topic that a
"graft run --source kafka://..." group consumes, or to a Kinesis stream
(--to kinesis://STREAM?region=R: PutRecords with at most one record per key
in a request, so that a failed record is retried before the key's next one
and per-key order holds).

Every line is checked first, as the engine would: a line that does not decode
(malformed JSON, unknown op, wrong type, over --max-record-bytes) is not
produced; it is reported on stderr as FILE:LINE with the field at fault, and
written verbatim to --rejects FILE when given. The record key is the write's
key (its "key", else the id of its first op's element), so one key's writes
stay in one partition, in file order.

The producer is idempotent with acks=all: a record counts as produced once
every in-sync replica has it. TLS and SASL come from the kafka: section of
the config file (--config, or ./graft.yaml).

Exit codes: 0 every line produced, 1 some lines rejected or not delivered
(or the brokers unreachable), 2 bad usage.`

type produceFlags struct {
	sinkFlags
	to      string
	rejects string
	timeout time.Duration
	json    bool
	quiet   bool
}

func runProduce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f produceFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("produce", "graft produce --to kafka://BROKER[,BROKER]/TOPIC|kinesis://STREAM?region=R [flags] [FILE|-]", produceAbout)
	c := &f.c
	fs.StringVar(&f.configPath, "config", f.configPath, "config `file` (default ./graft.yaml when it exists): the kafka: section (TLS, SASL) and limits:")
	fs.StringVar(&f.to, "to", "", "kafka://BROKER[,BROKER]/TOPIC or kinesis://STREAM?region=R[&endpoint=URL] (required)")
	fs.StringVar(&f.rejects, "rejects", "", "write the lines not produced to this `file`, verbatim, one per line")
	fs.DurationVar(&f.timeout, "delivery-timeout", 2*time.Minute, "give up on a record the brokers have not acknowledged within this `duration`")
	fs.IntVar(&c.Limits.MaxRecordBytes, "max-record-bytes", c.Limits.MaxRecordBytes, "largest line accepted, in `bytes`")
	fs.IntVar(&c.Limits.MaxOps, "max-ops", c.Limits.MaxOps, "most ops in one write")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object on stdout")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress and no summary on stderr (rejected lines are still reported)")
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if f.to == "" {
		return usagef("--to kafka://BROKER[,BROKER]/TOPIC or kinesis://STREAM?region=R is required")
	}
	if err := f.c.Validate(); err != nil {
		return usagef("invalid configuration:\n%v", err)
	}
	input, err := openInput(pos, stdin)
	if err != nil {
		return err
	}
	defer input.Close()
	in, name, size := input.r, input.name, input.size
	var rejects io.Writer
	if f.rejects != "" {
		rf, err := os.Create(f.rejects)
		if err != nil {
			return fmt.Errorf("--rejects: %w", err)
		}
		defer rf.Close()
		rejects = rf
	}
	prod, err := f.sender(ctx)
	if err != nil {
		return err
	}
	defer prod.close()

	var (
		produced, failed, rejected atomic.Int64
		mu                         sync.Mutex // stderr and rejects
	)
	reject := func(pos graft.Position, raw []byte, why string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stderr, "%s:%d: %s\n", pos.Partition, pos.Offset, why)
		if rejects != nil {
			rejects.Write(append(raw[:len(raw):len(raw)], '\n'))
		}
	}
	src := file.New(name, in, f.c.Limits.MaxRecordBytes)
	start := time.Now()
	stopProgress := startProgress(stderr, f.quiet, func() string {
		pct := ""
		if size > 0 {
			pct = fmt.Sprintf("%3.0f%% ", 100*float64(src.BytesRead())/float64(size))
		}
		return fmt.Sprintf("%s%d produced, %d rejected", pct, produced.Load(), rejected.Load()+failed.Load())
	})
	limits := f.c.Engine().Limits
	var readErr error
	for {
		recs, err := src.Fetch(ctx)
		for _, rec := range recs {
			if rec.Truncated > 0 {
				rejected.Add(1)
				reject(rec.Pos, rec.Value, fmt.Sprintf("record is %d bytes, over the limit of %d bytes (--max-record-bytes); its start is in --rejects", rec.Truncated, limits.MaxRecordBytes))
				continue
			}
			w, derr := graft.Decode(rec.Value, "", limits)
			if derr != nil {
				rejected.Add(1)
				reject(rec.Pos, rec.Value, derr.Error())
				continue
			}
			pos, value := rec.Pos, rec.Value
			prod.send(ctx, w.Key, value, func(err error) {
				if err != nil {
					failed.Add(1)
					reject(pos, value, "not delivered: "+err.Error())
					return
				}
				produced.Add(1)
			})
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
	}
	flushErr := prod.flush(context.WithoutCancel(ctx))
	stopProgress()
	sum := produceSummary{Produced: produced.Load(), Rejected: rejected.Load(), Failed: failed.Load(), Topic: prod.name(), Seconds: time.Since(start).Seconds()}
	if sum.Seconds > 0 {
		sum.PerSecond = float64(sum.Produced) / sum.Seconds
	}
	if !f.quiet {
		fmt.Fprintf(stderr, "%d produced to %s, %d rejected, %d not delivered; %.2fs, %.0f records/s\n",
			sum.Produced, sum.Topic, sum.Rejected, sum.Failed, sum.Seconds, sum.PerSecond)
	}
	if f.json {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stdout, string(b))
	}
	switch {
	case readErr != nil && ctx.Err() == nil:
		return fmt.Errorf("reading %s: %w", name, readErr)
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	case sum.Rejected+sum.Failed > 0:
		return fmt.Errorf("%d lines not produced (reported above by line)", sum.Rejected+sum.Failed)
	}
	return nil
}

type produceSummary struct {
	Topic     string  `json:"topic"`
	Produced  int64   `json:"produced"`
	Rejected  int64   `json:"rejected"`      // did not decode: never sent
	Failed    int64   `json:"not_delivered"` // sent, refused or timed out
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"records_per_second"`
}

// sender is where graft produce sends: a Kafka topic or a Kinesis stream.
type sender interface {
	send(ctx context.Context, key string, value []byte, done func(error))
	flush(ctx context.Context) error
	close()
	name() string
}

func (f *produceFlags) sender(ctx context.Context) (sender, error) {
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if strings.HasPrefix(f.to, "kinesis://") {
		kc, err := kinesis.ParseURL(f.to)
		if err != nil {
			return nil, usagef("--to: %v", err)
		}
		p, err := kinesis.NewProducer(ctx, kc)
		if err != nil {
			return nil, err
		}
		if err := p.Ping(pingCtx); err != nil {
			return nil, fmt.Errorf("cannot produce: %w", err)
		}
		return &kinesisSender{p: p, stream: f.to}, nil
	}
	target, err := kafka.ParseTarget(f.to)
	if err != nil {
		return nil, usagef("--to: %v", err)
	}
	p, err := kafka.NewProducer(target, f.c.Kafka, kgo.RecordDeliveryTimeout(f.timeout))
	if err != nil {
		return nil, err
	}
	if err := p.Ping(pingCtx); err != nil {
		p.Close()
		return nil, fmt.Errorf("cannot produce: %w", err)
	}
	return kafkaSender{p}, nil
}

type kafkaSender struct{ p *kafka.Producer }

func (k kafkaSender) send(ctx context.Context, key string, value []byte, done func(error)) {
	k.p.Produce(ctx, []byte(key), value, nil, func(_ graft.Position, err error) { done(err) })
}
func (k kafkaSender) flush(ctx context.Context) error { return k.p.Flush(ctx) }
func (k kafkaSender) close()                          { k.p.Close() }
func (k kafkaSender) name() string                    { return k.p.String() }

// kinesisSender puts records in chunks of kinesisChunk, in order per key.
type kinesisSender struct {
	p       *kinesis.Producer
	stream  string
	entries []kinesis.Entry
	dones   []func(error)
}

const kinesisChunk = 2000

func (k *kinesisSender) send(ctx context.Context, key string, value []byte, done func(error)) {
	k.entries = append(k.entries, kinesis.Entry{Key: key, Data: value})
	k.dones = append(k.dones, done)
	if len(k.entries) >= kinesisChunk {
		k.flush(ctx)
	}
}

func (k *kinesisSender) flush(ctx context.Context) error {
	if len(k.entries) == 0 {
		return nil
	}
	dones := k.dones
	err := k.p.Put(ctx, k.entries, func(i int, _ kinesis.Stored, err error) { dones[i](err) })
	k.entries, k.dones = nil, nil
	return err
}
func (k *kinesisSender) close()       {}
func (k *kinesisSender) name() string { return k.stream }
