// Package engine is Graft's pipeline: it takes records from a Source,
// decodes them, schedules them in per-key order with conflict domains,
// batches and coalesces them, eliminates what the graph already holds, applies
// batches to a Sink, reacts to each class of error, dead-letters what cannot
// succeed, and acknowledges source positions once everything before them is
// committed or dead-lettered.
//
// One goroutine (the scheduler, in Run) owns all scheduling state; a reader
// goroutine feeds it decoded records, workers apply batches, and a dead-letter
// goroutine writes letters durably. They talk over channels only.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/graftdb/graft"
)

// Engine runs records from a source into a sink.
type Engine struct {
	sink  graft.Sink
	dlq   graft.DeadLetters
	cfg   Config
	log   *slog.Logger
	cache *writeCache
	stats Stats

	quarantined map[string]bool // scheduler goroutine only
	qmu         sync.Mutex      // guards quarantined for Quarantine()

	lockDown atomic.Bool  // the locker fails: writing is paused
	lockErr  atomic.Value // its last error

	sourceErr atomic.Pointer[error] // the source fails and is retried; nil when it reads

	lost lostMarks // partitions lost to another instance (drain.go)
}

// New returns an engine writing to sink and dead-lettering to dlq.
func New(sink graft.Sink, dlq graft.DeadLetters, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lim := sink.Limits()
	// 0: the sink's limit (or a fallback when the sink reports none); more
	// than the sink's limit: capped.
	fit := func(v *int, sinkMax, fallback int) {
		switch {
		case *v == 0 && sinkMax > 0:
			*v = sinkMax
		case *v == 0:
			*v = fallback
		case sinkMax > 0 && *v > sinkMax:
			*v = sinkMax
		}
	}
	fit(&cfg.MaxBatchWrites, lim.MaxWrites, 1000)
	fit(&cfg.MaxBatchUnits, lim.MaxUnits, 4000)
	fit(&cfg.MaxBatchBytes, lim.MaxBytes, 4<<20)
	fit(&cfg.Concurrency, lim.Concurrency, 8)
	e := &Engine{
		sink: sink, dlq: dlq, cfg: cfg, log: cfg.Logger,
		cache:       newWriteCache(cfg.CacheSize),
		quarantined: map[string]bool{},
	}
	if cfg.SharedCache != nil && e.cache != nil {
		e.cache.shared = &sharedState{c: cfg.SharedCache, log: cfg.Logger, stats: &e.stats}
	}
	return e, nil
}

// Ready reports why the engine cannot write now (the locker is
// unreachable), or nil.
func (e *Engine) Ready() error {
	if err := e.sourceErr.Load(); err != nil {
		return fmt.Errorf("source unreachable, retrying: %w", *err)
	}
	if e.lockDown.Load() {
		if err, ok := e.lockErr.Load().(error); ok {
			return err
		}
		return errors.New("locker unreachable")
	}
	return nil
}

// Config returns the effective configuration.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Quarantine marks keys as quarantined (their writes are dead-lettered), for
// keys already in the dead letters when the engine starts. Call before Run.
func (e *Engine) Quarantine(keys ...string) {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	for _, k := range keys {
		e.quarantined[k] = true
	}
}

// ErrStopped: the engine is not running.
var ErrStopped = errors.New("engine stopped")

// ErrDrainTimeout: the graceful stop did not finish in time; what was not
// committed was not acknowledged and will be replayed.
var ErrDrainTimeout = errors.New("drain timed out: unacknowledged records will be replayed")

// FatalError stops the engine: the sink cannot take any write.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return "fatal sink error: " + e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// ErrCacheNotShared: the in-process write cache, without a shared one, with
// a source whose partitions move between processes. Another instance can
// change an element after this one cached it, and a write the stale fact
// eliminates would be lost (docs/cache.md).
var ErrCacheNotShared = errors.New("the in-process write cache alone cannot serve a source whose partitions move between processes: give it a shared cache (SharedCache; --cache redis://…) or none (CacheSize -1; --cache off)")

func (e *Engine) cacheFits(src graft.Source) error {
	if e.cache == nil || e.cache.shared != nil {
		return nil
	}
	_, rebalances := src.(graft.Rebalancer)
	_, abandons := src.(graft.Abandoner)
	if rebalances || abandons {
		return fmt.Errorf("engine: %T: %w", src, ErrCacheNotShared)
	}
	return nil
}

// input is what the reader goroutine sends the scheduler.
type input struct {
	nodes   []*node
	err     error // io.EOF at the end of a finite source
	drain   *drainReq
	abandon *abandonReq
}

// result is what a worker reports for one batch.
type result struct {
	committed []*node
	dead      []*node
	returned  []*node // back to the scheduler, not applied
	parked    []*node // returned, to retry after n.due
	fatal     error
	shrink    bool    // the sink asked for smaller batches
	batch     []*node // the batch as dispatched
}

// Run consumes src until it is exhausted (io.EOF) or ctx is cancelled, then
// drains in-flight work (within DrainTimeout) and returns. A cancelled ctx is
// a graceful stop: Run returns nil if the drain finished.
//
// A source whose partitions move between processes (a graft.Rebalancer or
// graft.Abandoner: a Kafka group, Kinesis leases) is refused with the
// in-process write cache alone (ErrCacheNotShared).
func (e *Engine) Run(ctx context.Context, src graft.Source) error {
	if err := e.cacheFits(src); err != nil {
		return err
	}
	if _, ok := src.(graft.Versioner); e.cfg.DeriveVersions && !ok {
		return fmt.Errorf("engine: DeriveVersions with %T, which derives no versions: writes would carry only their producers' (docs/DESIGN.md, \"Versions\")", src)
	}
	s := newScheduler(e, src)
	return s.run(ctx)
}
