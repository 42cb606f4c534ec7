package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/source/file"
	"github.com/graftdb/graft/source/jetstream"
	"github.com/graftdb/graft/source/kafka"
	"github.com/graftdb/graft/source/kinesis"
)

// source is an open source and what the service serves beside it.
type source struct {
	graft.Source
	name      string                               // for messages: the URL, or "embedded JetStream"
	publisher api.Publisher                        // nil: HTTP ingest disabled
	waiter    api.Waiter                           // nil: the engine's own watermark
	lag       func(context.Context) (int64, error) // nil: unknown
	metrics   []prometheus.Collector
	closers   []func()
}

func (s *source) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// sourceOpeners wires every source scheme of config.Sources, explicitly.
var sourceOpeners = map[string]func(ctx context.Context, c config.Config, local *api.Watermark, log *slog.Logger) (*source, error){
	"nats://":    openNATS,
	"kafka://":   openKafka,
	"kinesis://": openKinesis,
	"file:":      openFile,
}

// openSource opens the source c names; the embedded JetStream when none.
// local is the engine's acknowledgement watermark, for ?wait=committed.
func openSource(ctx context.Context, c config.Config, local *api.Watermark, log *slog.Logger) (*source, error) {
	if c.Source == "" {
		return openEmbedded(ctx, c, log)
	}
	sch, ok := config.Match(config.Sources, c.Source)
	if !ok {
		return nil, configErr("--source %q: unknown scheme (%s)", config.Redact(c.Source), config.Forms(config.Sources))
	}
	return sourceOpeners[sch.Prefix](ctx, c, local, log)
}

// DeadLetterTopic returns the dead-letter topic a Kafka source URL names
// (dlq=), or nil: for OpenPipeline.
func DeadLetterTopic(c config.Config) (*kafka.DeadLetterTopic, error) {
	if !strings.HasPrefix(c.Source, "kafka://") {
		return nil, nil
	}
	kc, err := kafka.ParseURL(c.Source)
	if err != nil {
		return nil, configErr("--source: %v", err)
	}
	if kc.DeadLetters == "" {
		return nil, nil
	}
	t, _ := kc.DeadLetterTarget()
	dt, err := kafka.NewDeadLetterTopic(t, c.Kafka)
	if err != nil {
		return nil, fmt.Errorf("dead-letter topic %s: %w", t, err)
	}
	return dt, nil
}

func openEmbedded(ctx context.Context, c config.Config, log *slog.Logger) (_ *source, err error) {
	s := &source{name: "embedded JetStream"}
	defer closeOnError(s, &err)
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Dir: filepath.Join(c.DataDir, "jetstream"), SyncAlways: c.Stream.SyncAlways, MaxRecordBytes: c.Limits.MaxRecordBytes})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, emb.Close)
	cfg := jetstream.DefaultConfig()
	// The embedded stream is Graft's own: bounded, and trimmed of what is
	// acknowledged.
	cfg.TrimAcked, cfg.MaxBytes = true, c.Stream.MaxBytes
	// Only Graft writes and removes its messages: a skipped sequence or a
	// stream shorter than what was accepted is a loss, reported.
	cfg.Contiguous, cfg.AcceptedFile = true, filepath.Join(c.DataDir, "jetstream", "graft-accepted")
	cfg.TrimmedFile = filepath.Join(c.DataDir, "jetstream", "graft-trimmed")
	err = s.jetStream(ctx, emb.Conn(), cfg, log)
	if errors.Is(err, jetstream.ErrConsumerStateDamaged) {
		// Where the consumer stopped is lost; the stream holds what was not
		// acknowledged and at most a few seconds (or 1,000 records) of
		// what was, since it is trimmed as it goes. Reading it again from
		// its first record applies those again: harmless, writes are
		// idempotent, and each key stays in order.
		path, rerr := emb.ResetConsumerState(cfg.Stream, cfg.Durable)
		if rerr != nil {
			return nil, fmt.Errorf("embedded JetStream in %s: %w; %w", filepath.Join(c.DataDir, "jetstream"), err, rerr)
		}
		log.Error("embedded JetStream: the consumer's state was damaged and is reset; the stream is read again from the first record it holds "+
			"(records applied in the last few seconds are applied again, which is harmless)", "file", path, "err", err)
		err = s.jetStream(ctx, emb.Conn(), cfg, log)
	}
	return s, err
}

func openNATS(ctx context.Context, c config.Config, _ *api.Watermark, log *slog.Logger) (_ *source, err error) {
	t, err := natsTarget(c.Source)
	if err != nil {
		return nil, configErr("--source %v", err)
	}
	s := &source{name: c.Source}
	defer closeOnError(s, &err)
	nc, err := nats.Connect("nats://"+t.host, nats.Name("graft"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("cannot reach source %s: %w", c.Source, err)
	}
	s.closers = append(s.closers, nc.Close)
	cfg := jetstream.DefaultConfig()
	cfg.Stream, cfg.Subject = t.stream, t.subject
	if err := s.jetStream(ctx, nc, cfg, log); err != nil {
		if errors.Is(err, jetstream.ErrConsumerStateDamaged) {
			return nil, fmt.Errorf("source %s: %w. To read the stream again from its first record (what was applied is applied again; writes are idempotent), "+
				"delete the consumer: nats consumer rm %s %s; or restore the server's files", c.Source, err, cfg.Stream, cfg.Durable)
		}
		return nil, fmt.Errorf("source %s: %w", c.Source, err)
	}
	return s, nil
}

// natsTarget reads nats://HOST:PORT/STREAM/SUBJECT.
type natsURL struct{ host, stream, subject string }

func natsTarget(raw string) (natsURL, error) {
	u, err := url.Parse(raw)
	var parts []string
	if err == nil {
		parts = strings.Split(strings.Trim(u.Path, "/"), "/")
	}
	if err != nil || len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return natsURL{}, fmt.Errorf("%q: want nats://HOST:PORT/STREAM/SUBJECT", config.Redact(raw))
	}
	return natsURL{u.Host, parts[0], parts[1]}, nil
}

// jetStream opens the JetStream source and its publisher on nc.
func (s *source) jetStream(ctx context.Context, nc *nats.Conn, cfg jetstream.Config, log *slog.Logger) error {
	js, err := jetstream.New(ctx, nc, cfg, log) // first: it checks the record of accepted sequences
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { js.Close() })
	pub, err := jetstream.NewPublisher(ctx, nc, cfg)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, func() { pub.Close() })
	s.Source, s.publisher, s.lag, s.metrics = js, pub, js.Lag, js.Collectors()
	return nil
}

func openKafka(ctx context.Context, c config.Config, local *api.Watermark, log *slog.Logger) (_ *source, err error) {
	kc, err := kafka.ParseURL(c.Source)
	if err != nil {
		return nil, configErr("--source: %v", err)
	}
	kc.Security = c.Kafka
	s := &source{name: c.Source}
	defer closeOnError(s, &err)
	ks, err := kafka.New(kc, log)
	if err != nil {
		return nil, fmt.Errorf("cannot reach source %s: %w", c.Source, err)
	}
	s.closers = append(s.closers, func() { ks.Close() })
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = ks.Ping(pingCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cannot reach source %s: %w", c.Source, err)
	}
	topics := kc.Topics
	if kc.Regex {
		topics = nil // patterns: the lag is the brokers' view of the group
	}
	group, err := kafka.NewGroup(kc.Brokers, kc.Group, topics, kc.Security)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", c.Source, err)
	}
	s.closers = append(s.closers, group.Close)
	s.Source, s.lag = ks, group.Lag
	if t, ok := kc.ProduceTarget(); ok {
		prod, err := kafka.NewProducer(t, kc.Security)
		if err != nil {
			return nil, fmt.Errorf("ingest topic %s: %w", t, err)
		}
		s.closers = append(s.closers, prod.Close)
		s.publisher, s.waiter = prod, groupWaiter{local: local, group: group}
	}
	return s, nil
}

// groupWaiter waits for positions of a Kafka topic to be committed: by this
// process's engine (fast), or by the group (a partition another member
// owns; its offsets are committed every second).
type groupWaiter struct {
	local *api.Watermark
	group *kafka.Group
}

func (w groupWaiter) Wait(ctx context.Context, positions []graft.Position) error {
	for {
		ok, advanced := w.local.Reached(positions)
		if ok {
			return nil
		}
		if ok, err := w.group.Committed(ctx, positions); err == nil && ok {
			return nil
		}
		select {
		case <-advanced:
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func openKinesis(ctx context.Context, c config.Config, _ *api.Watermark, log *slog.Logger) (_ *source, err error) {
	kc, err := kinesis.ParseURL(c.Source)
	if err != nil {
		return nil, configErr("--source: %v", err)
	}
	if kc.Worker == "" {
		// The data directory's own name in the lease table: restarted, the
		// instance recognises its leases and takes them back at once
		// instead of waiting for their TTL like a stranger. Safe: one
		// process per data directory (its lock), and the dead one writes
		// nothing more.
		if kc.Worker, err = WorkerName(c.DataDir); err != nil {
			return nil, err
		}
	}
	s := &source{name: c.Source}
	defer closeOnError(s, &err)
	ks, err := kinesis.New(ctx, kc, log)
	if err != nil {
		return nil, fmt.Errorf("cannot reach source %s: %w", c.Source, err)
	}
	s.closers = append(s.closers, func() { ks.Close() })
	pub, err := kinesis.NewPublisher(ctx, kc)
	if err != nil {
		return nil, fmt.Errorf("ingest stream %s: %w", c.Source, err)
	}
	// HTTP ingest puts on the stream; ?wait=committed waits for the
	// records' shards to be checkpointed past them, by this instance or by
	// the one holding the lease.
	s.Source, s.publisher, s.waiter, s.lag, s.metrics = ks, pub, ks, ks.Lag, ks.Collectors()
	return s, nil
}

func openFile(_ context.Context, c config.Config, _ *api.Watermark, _ *slog.Logger) (*source, error) {
	path := strings.TrimPrefix(c.Source, "file:")
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	s := &source{name: c.Source, closers: []func(){func() { fh.Close() }}}
	s.Source = file.New(path, fh, c.Limits.MaxRecordBytes)
	return s, nil
}

// WorkerName is the data directory's stable name in a Kinesis lease table
// (<data-dir>/kinesis-worker, made on first use: the host name and a random
// suffix).
func WorkerName(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "kinesis-worker")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	host, _ := os.Hostname()
	var r [4]byte
	rand.Read(r[:])
	name := fmt.Sprintf("%s-%x", host, r)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("kinesis worker name: %w", err)
	}
	return name, nil
}

// closeOnError closes s when *err is set: for the openers' early returns.
func closeOnError(s *source, err *error) {
	if *err != nil {
		s.close()
	}
}
