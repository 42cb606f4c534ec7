package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/deadletter"
	"github.com/graftdb/graft/mapping"
	"github.com/graftdb/graft/source/kafka"
)

const routeAbout = `
The graph writer's transformer: consumes domain events from Kafka, maps them with
the rules of --mapping (docs/mapping.md), and produces each write to the
topic <topic_prefix><RuleName> (topic_prefix from the mapping file, default
"graph.write."; --topic-prefix overrides) on the brokers of --to, keyed by
the write's key — where "graft run --source kafka://…/graph\.write\..*"
picks them up.

Delivery: the events of each poll are mapped and produced (idempotent,
acks=all) and their dead letters stored before the source offsets move past
them; a crash replays from the last commit, and the consumer's writes are
idempotent. Events no rule matches are dead letters of class "unmapped"
(or skipped: "unmapped: skip" in the mapping file); events a rule fails on
are dead letters naming the rule and the field. Dead letters go to
<data-dir>/deadletters.ndjson, or to the source's dlq= topic.

TLS and SASL come from the kafka: section of the config file, for both
sides. SIGINT or SIGTERM: finishes the current poll, commits, exits 0.`

func runRoute(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f sinkFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	var to, prefix string
	fs := newFlagSet("route", "graft route --mapping FILE --source kafka://BROKERS/TOPICS?group=NAME --to kafka://BROKERS [flags]", routeAbout)
	fs.StringVar(&f.configPath, "config", f.configPath, "config `file` (default ./graft.yaml when it exists): the kafka: section, limits:")
	fs.StringVar(&f.c.DataDir, "data-dir", f.c.DataDir, "`directory` for the dead-letter file")
	fs.StringVar(&f.c.Mapping, "mapping", f.c.Mapping, "mapping rules `file` (required)")
	fs.StringVar(&f.c.Source, "source", f.c.Source, "the events: kafka://BROKER[,BROKER]/TOPICS?group=NAME[&dlq=…] (required)")
	fs.StringVar(&to, "to", "", "where writes go: kafka://BROKER[,BROKER] (required)")
	fs.StringVar(&prefix, "topic-prefix", "", "topic of a rule's writes: prefix + rule name (default the mapping file's topic_prefix)")
	fs.IntVar(&f.c.Limits.MaxRecordBytes, "max-record-bytes", f.c.Limits.MaxRecordBytes, "largest event accepted, in `bytes`")
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	switch {
	case f.c.Mapping == "":
		return usagef("--mapping FILE is required")
	case !strings.HasPrefix(f.c.Source, "kafka://"):
		return usagef("--source kafka://BROKERS/TOPICS?group=NAME is required")
	case !strings.HasPrefix(to, "kafka://"):
		return usagef("--to kafka://BROKERS is required")
	}
	if err := f.c.Validate(); err != nil {
		return usagef("invalid configuration:\n%v", err)
	}
	m, err := mapping.Load(f.c.Mapping)
	if err != nil {
		return usagef("--mapping: %v", err)
	}
	if prefix == "" {
		prefix = m.TopicPrefix()
	}
	kc, err := kafka.ParseURL(f.c.Source)
	if err != nil {
		return usagef("--source: %v", err)
	}
	kc.Security = f.c.Kafka
	brokers := strings.Split(strings.TrimSuffix(strings.TrimPrefix(to, "kafka://"), "/"), ",")
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	var letters graft.DeadLetters
	if kc.DeadLetters != "" {
		t, _ := kc.DeadLetterTarget()
		dt, err := kafka.NewDeadLetterTopic(t, kc.Security)
		if err != nil {
			return fmt.Errorf("dead-letter topic %s: %w", t, err)
		}
		defer dt.Close()
		letters = dt
	} else {
		unlock, err := app.LockDataDir(f.c.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
		df, err := deadletter.Open(filepath.Join(f.c.DataDir, deadletter.FileName))
		if err != nil {
			return err
		}
		defer df.Close()
		letters = df
	}
	// The producer writes to many topics: the target topic is per record.
	prod, err := kafka.NewProducer(kafka.Target{Brokers: brokers}, kc.Security)
	if err != nil {
		return err
	}
	defer prod.Close()
	src, err := kafka.New(kc, log)
	if err != nil {
		return fmt.Errorf("cannot reach source %s: %w", f.c.Source, err)
	}
	defer src.Close()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = src.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot reach source %s: %w", f.c.Source, err)
	}
	fmt.Fprintf(stderr, "graft route: %s → %s<Rule> on %s\n", f.c.Source, prefix, to)
	r := &router{m: m, prefix: prefix, prod: prod, src: src, letters: letters, lim: f.c.Engine().Limits, log: log}
	err = r.run(ctx)
	fmt.Fprintf(stderr, "graft route: %d events: %d routed, %d skipped, %d dead letters\n", r.events.Load(), r.routed.Load(), r.skipped.Load(), r.dead.Load())
	if errors.Is(err, context.Canceled) || errors.Is(err, graft.ErrClosed) {
		return nil
	}
	return err
}

// router maps each poll's events and produces the writes before it lets the
// source commit past them.
type router struct {
	m       *mapping.Mapper
	prefix  string
	prod    *kafka.Producer
	src     *kafka.Source
	letters graft.DeadLetters
	lim     graft.Limits
	log     *slog.Logger

	events, routed, skipped, dead atomic.Int64
}

func (r *router) run(ctx context.Context) error {
	for {
		recs, err := r.src.Fetch(ctx)
		if err != nil {
			return err
		}
		if err := r.route(ctx, recs); err != nil {
			return err
		}
	}
}

// route handles one poll: produce, dead-letter, then acknowledge.
func (r *router) route(ctx context.Context, recs []graft.Record) error {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failed  error
		letters []*graft.Letter
	)
	now := time.Now().UTC()
	reject := func(rec graft.Record, err error) {
		letters = append(letters, graft.Rejected(rec.Pos, err, rec.Value, rec.Key, now))
	}
	for _, rec := range recs {
		r.events.Add(1)
		if len(rec.Value) > r.lim.MaxRecordBytes {
			reject(rec, fmt.Errorf("event is %d bytes, over the limit of %d bytes", len(rec.Value), r.lim.MaxRecordBytes))
			continue
		}
		w, rule, err := r.m.MapRecord(rec, r.lim)
		switch {
		case err != nil: // unmapped, or a rule that failed
			reject(rec, err)
			continue
		case w == nil:
			r.skipped.Add(1)
			continue
		}
		wg.Add(1)
		r.prod.ProduceTo(ctx, r.prefix+rule, []byte(w.Key), w.AppendJSON(nil), func(_ graft.Position, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if failed == nil {
					failed = fmt.Errorf("produce to %s%s: %w", r.prefix, rule, err)
				}
				mu.Unlock()
				return
			}
			r.routed.Add(1)
		})
	}
	wg.Wait()
	if failed != nil {
		// Nothing of this poll is acknowledged: it is replayed after a
		// restart (the writes already produced are idempotent).
		return failed
	}
	if len(letters) > 0 {
		if err := r.letters.Append(ctx, letters); err != nil {
			return fmt.Errorf("dead letters: %w", err)
		}
		r.dead.Add(int64(len(letters)))
	}
	last := map[string]graft.Position{}
	for _, rec := range recs {
		if p, ok := last[rec.Pos.Partition]; !ok || rec.Pos.Offset > p.Offset {
			last[rec.Pos.Partition] = rec.Pos
		}
	}
	for _, p := range last {
		if err := r.src.Ack(ctx, p); err != nil {
			return err
		}
	}
	return nil
}
