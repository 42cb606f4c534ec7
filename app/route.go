package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/deadletter"
	"github.com/graftdb/graft/mapping"
	"github.com/graftdb/graft/source/kafka"
)

// Router is graft route: domain events from Kafka, mapped by rules, produced
// as writes to <prefix><RuleName> topics.
type Router struct {
	r       *router
	closers []func()
}

// OpenRouter opens the mapping, the event source (c.Source, kafka://), the
// producer on the brokers of to (kafka://BROKERS) and the dead letters (the
// source's dlq= topic, else the data directory's file). prefix "" is the
// mapping file's topic_prefix.
func OpenRouter(ctx context.Context, c config.Config, to, prefix string, log *slog.Logger) (_ *Router, err error) {
	if err := c.Validate(); err != nil {
		return nil, configErr("invalid configuration:\n%v", err)
	}
	m, err := mapping.Load(c.Mapping)
	if err != nil {
		return nil, configErr("--mapping: %v", err)
	}
	if prefix == "" {
		prefix = m.TopicPrefix()
	}
	kc, err := kafka.ParseURL(c.Source)
	if err != nil {
		return nil, configErr("--source: %v", err)
	}
	kc.Security = c.Kafka
	brokers := strings.Split(strings.TrimSuffix(strings.TrimPrefix(to, "kafka://"), "/"), ",")
	rt := &Router{}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	var letters graft.DeadLetters
	if kc.DeadLetters != "" {
		t, _ := kc.DeadLetterTarget()
		dt, err := kafka.NewDeadLetterTopic(t, kc.Security)
		if err != nil {
			return nil, fmt.Errorf("dead-letter topic %s: %w", t, err)
		}
		rt.closers = append(rt.closers, func() { dt.Close() })
		letters = dt
	} else {
		unlock, err := LockDataDir(c.DataDir)
		if err != nil {
			return nil, err
		}
		rt.closers = append(rt.closers, unlock)
		df, err := deadletter.Open(filepath.Join(c.DataDir, deadletter.FileName))
		if err != nil {
			return nil, err
		}
		rt.closers = append(rt.closers, func() { df.Close() })
		letters = df
	}
	// The producer writes to many topics: the target topic is per record.
	prod, err := kafka.NewProducer(kafka.Target{Brokers: brokers}, kc.Security)
	if err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, prod.Close)
	src, err := kafka.New(kc, log)
	if err != nil {
		return nil, fmt.Errorf("cannot reach source %s: %w", c.Source, err)
	}
	rt.closers = append(rt.closers, func() { src.Close() })
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = src.Ping(pctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("cannot reach source %s: %w", c.Source, err)
	}
	rt.r = &router{m: m, prefix: prefix, prod: prod, src: src, letters: letters, lim: c.Engine().Limits, log: log}
	return rt, nil
}

// Prefix is the topic prefix in use.
func (rt *Router) Prefix() string { return rt.r.prefix }

// Run routes until ctx ends or the source fails.
func (rt *Router) Run(ctx context.Context) error { return rt.r.run(ctx) }

// Counts are the events taken, routed, skipped (unmapped: skip) and
// dead-lettered so far.
func (rt *Router) Counts() (events, routed, skipped, dead int64) {
	return rt.r.events.Load(), rt.r.routed.Load(), rt.r.skipped.Load(), rt.r.dead.Load()
}

// Close closes what OpenRouter opened, in reverse order.
func (rt *Router) Close() {
	for i := len(rt.closers) - 1; i >= 0; i-- {
		rt.closers[i]()
	}
	rt.closers = nil
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
