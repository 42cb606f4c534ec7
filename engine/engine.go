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
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

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

// input is what the reader goroutine sends the scheduler.
type input struct {
	nodes   []*node
	err     error // io.EOF at the end of a finite source
	drain   *drainReq
	abandon *abandonReq
}

// abandonReq drops a lost partition's records up to an offset (graft.Abandoner).
type abandonReq struct {
	partition string
	through   int64
}

// drainReq asks to be told when every admitted record of the partitions is
// done (and so acknowledged or about to be).
type drainReq struct {
	parts map[string]bool
	done  chan struct{}
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
func (e *Engine) Run(ctx context.Context, src graft.Source) error {
	s := newScheduler(e, src)
	return s.run(ctx)
}

type scheduler struct {
	e   *Engine
	src graft.Source
	cfg Config

	in      chan input
	results chan result
	dlDone  chan []*node
	work    chan []*node
	dlWork  chan []*node

	last         map[resource]*node // resource → latest node touching it, not done
	locked       map[string]int     // vertex → batches in flight touching it
	readyQ       seqHeap
	readyUnits   int
	readySince   time.Time
	parkQ        dueHeap
	tracks       map[string]*partitionTrack
	pending      int // nodes admitted and not done
	pendingBytes int
	idle         int
	batchID      uint32
	unitsCap     int // adaptive batch unit limit (shrinks on conflict)

	budget      *semaphore.Weighted
	budgetBytes *semaphore.Weighted
	inputDone   bool
	stopping    bool
	fatal       error

	acks      *acker
	dlPending []*node // dead letters not yet handed to the dead-letter goroutine
	drains    []*drainReq
	lost      map[string]int64 // partition → offset through which its records are abandoned
	exited    chan struct{}    // closed when run returns
	dlBusy    int              // batches of dead letters being written
}

func newScheduler(e *Engine, src graft.Source) *scheduler {
	cfg := e.cfg
	return &scheduler{
		e: e, src: src, cfg: cfg,
		in:          make(chan input, 16),
		results:     make(chan result, cfg.Concurrency),
		dlDone:      make(chan []*node, 16),
		work:        make(chan []*node),
		dlWork:      make(chan []*node),
		last:        map[resource]*node{},
		locked:      map[string]int{},
		tracks:      map[string]*partitionTrack{},
		lost:        map[string]int64{},
		idle:        cfg.Concurrency,
		unitsCap:    cfg.MaxBatchUnits,
		budget:      semaphore.NewWeighted(int64(cfg.MaxInflightRecords)),
		budgetBytes: semaphore.NewWeighted(int64(cfg.MaxInflightBytes)),
		exited:      make(chan struct{}),
	}
}

func (s *scheduler) run(ctx context.Context) error {
	defer close(s.exited)
	// Work outlives ctx by the drain deadline.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	s.acks = newAcker(context.WithoutCancel(ctx), s.src, s.e.log)
	if rb, ok := s.src.(graft.Rebalancer); ok {
		rb.SetDrain(s.drainPartitions)
		defer rb.SetDrain(nil)
	}
	if ab, ok := s.src.(graft.Abandoner); ok {
		ab.SetAbandon(s.abandonPartition)
		defer ab.SetAbandon(nil)
	}
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for nodes := range s.work {
				s.results <- s.e.execute(workCtx, nodes)
			}
		}()
	}
	var dlwg sync.WaitGroup
	dlwg.Add(1)
	go func() {
		defer dlwg.Done()
		s.deadLetterLoop(workCtx)
	}()
	go s.readLoop(readCtx)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var drainDeadline <-chan time.Time
	ctxDone := ctx.Done()
	var err error
	for {
		s.dispatch()
		if s.finished() {
			break
		}
		s.resetTimer(timer)
		var dlSend chan []*node
		if len(s.dlPending) > 0 {
			dlSend = s.dlWork
		}
		select {
		case dlSend <- s.dlPending:
			s.dlBusy++
			s.dlPending = nil
		case in := <-s.in:
			s.admit(in)
		case r := <-s.results:
			s.idle++
			s.lock(r.batch, -1)
			s.handle(r)
		case nodes := <-s.dlDone:
			s.dlBusy--
			for _, n := range nodes {
				s.complete(n)
			}
		case <-timer.C:
			s.unpark()
		case <-ctxDone:
			ctxDone = nil
			s.stopping = true
			stopReading()
			drainDeadline = time.After(s.cfg.DrainTimeout)
			s.e.log.Info("stopping: draining in-flight writes", "pending", s.pending, "deadline", s.cfg.DrainTimeout)
		case <-drainDeadline:
			err = ErrDrainTimeout
			s.e.log.Warn("drain deadline passed", "pending", s.pending)
		}
		if err != nil {
			break
		}
	}
	stopReading()
	close(s.work)
	if err != nil || s.fatal != nil {
		cancelWork()
	}
	// Let workers finish (they return quickly once work is cancelled), keep
	// taking their results so none blocks.
	go func() { wg.Wait(); close(s.results) }()
	for r := range s.results {
		if s.fatal == nil && err == nil {
			s.handle(r)
		}
	}
	close(s.dlWork)
	dlwg.Wait()
	for {
		select {
		case nodes := <-s.dlDone:
			for _, n := range nodes {
				s.complete(n)
			}
			continue
		default:
		}
		break
	}
	s.acks.close()
	if s.fatal != nil {
		return s.fatal
	}
	if err == nil && s.pending > 0 {
		s.e.log.Info("stopped with parked writes; they will be delivered again", "pending", s.pending)
	}
	return err
}

// finished: nothing more will happen. When stopping, writes that are parked
// (or wait behind a parked one) do not hold the stop up: they are not
// acknowledged, so the source delivers them again after the restart.
func (s *scheduler) finished() bool {
	if s.fatal != nil {
		return true
	}
	if !(s.inputDone || s.stopping) || s.idle != s.cfg.Concurrency || len(s.dlPending) > 0 || s.dlBusy > 0 {
		return false
	}
	return s.pending == 0 || (s.stopping && len(s.readyQ) == 0)
}

func (s *scheduler) resetTimer(t *time.Timer) {
	var d time.Duration = time.Hour
	if len(s.parkQ) > 0 {
		d = time.Until(s.parkQ[0].due)
	}
	if len(s.readyQ) > 0 && s.idle > 0 {
		if l := s.cfg.Linger - time.Since(s.readySince); l < d {
			d = l
		}
	}
	if d < 0 {
		d = 0
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}

// readLoop fetches records, takes in-flight budget for each, decodes them and
// hands them to the scheduler in order.
func (s *scheduler) readLoop(ctx context.Context) {
	var seq uint64
	send := func(in input) bool {
		select {
		case s.in <- in:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		recs, err := s.src.Fetch(ctx)
		nodes := make([]*node, 0, len(recs))
		for i := range recs {
			rec := recs[i]
			size := len(rec.Value)
			if err := s.budget.Acquire(ctx, 1); err != nil {
				return
			}
			if err := s.budgetBytes.Acquire(ctx, s.byteWeight(size)); err != nil {
				s.budget.Release(1)
				return
			}
			seq++
			n := &node{seq: seq, rec: rec, size: size}
			if rec.Truncated > 0 {
				n.derr = &graft.FieldError{Msg: fmt.Sprintf("record is %d bytes, over the limit of %d bytes", rec.Truncated, s.cfg.Limits.MaxRecordBytes)}
			} else if s.cfg.Decode != nil {
				n.w, n.derr = s.cfg.Decode(rec)
			} else {
				n.w, n.derr = graft.Decode(rec.Value, rec.Key, s.cfg.Limits)
			}
			if n.w != nil {
				n.units = n.w.Units()
			}
			if s.cfg.MaxRecordAge > 0 && !rec.Arrived.IsZero() {
				if age := time.Since(rec.Arrived); age > s.cfg.MaxRecordAge {
					n.expired = fmt.Sprintf("record is %v old, over the max record age of %v", age.Round(time.Millisecond), s.cfg.MaxRecordAge)
				}
			}
			nodes = append(nodes, n)
			if len(nodes) >= 256 {
				if !send(input{nodes: nodes}) {
					return
				}
				nodes = make([]*node, 0, len(recs)-i)
			}
		}
		if len(nodes) > 0 && !send(input{nodes: nodes}) {
			return
		}
		if err != nil {
			if ctx.Err() != nil && graft.IsStop(err) {
				return
			}
			send(input{err: err})
			return
		}
	}
}

// byteWeight is what a record of size bytes costs against MaxInflightBytes:
// its raw bytes (kept for dead letters) plus its decoded form, measured at
// about three times the raw size for typical writes (ops, property maps,
// conflict-domain keys).
func (s *scheduler) byteWeight(size int) int64 {
	return min(int64(size)*4, int64(s.cfg.MaxInflightBytes))
}

// drainPartitions blocks until every record of the partitions that was
// handed to the engine is committed or dead-lettered, then flushes the
// acknowledgements to the source. It goes through the input channel, so
// records sent before it are admitted first.
func (s *scheduler) drainPartitions(ctx context.Context, parts []string) error {
	req := &drainReq{parts: map[string]bool{}, done: make(chan struct{})}
	for _, p := range parts {
		req.parts[p] = true
	}
	select {
	case s.in <- input{drain: req}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.exited:
		return ErrStopped
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.exited:
		return ErrStopped
	}
	s.acks.flush()
	return nil
}

// abandonPartition asks the scheduler to drop a lost partition's records
// (graft.Abandoner). It does not wait.
func (s *scheduler) abandonPartition(partition string, through int64) {
	select {
	case s.in <- input{abandon: &abandonReq{partition: partition, through: through}}:
	case <-s.exited:
	}
}

// abandoned reports whether n belongs to a partition lost at or after it.
func (s *scheduler) abandoned(n *node) bool {
	t, ok := s.lost[n.rec.Pos.Partition]
	return ok && n.rec.Pos.Offset <= t
}

// drop completes an abandoned node without applying it.
func (s *scheduler) drop(n *node) {
	s.e.stats.Abandoned.Add(1)
	s.complete(n)
}

// sweepAbandoned drops the queued and parked nodes of lost partitions; the
// waiting ones are dropped when they become ready, those in flight when
// their batch returns them.
func (s *scheduler) sweepAbandoned() {
	var gone []*node
	keep := func(q []*node) []*node {
		kept := q[:0]
		for _, n := range q {
			if s.abandoned(n) {
				gone = append(gone, n)
			} else {
				kept = append(kept, n)
			}
		}
		clear(q[len(kept):])
		return kept
	}
	s.readyQ = keep(s.readyQ)
	heap.Init(&s.readyQ)
	s.parkQ = keep(s.parkQ)
	heap.Init(&s.parkQ)
	s.readyUnits = 0
	for _, n := range s.readyQ {
		s.readyUnits += n.units
	}
	for _, n := range gone {
		s.drop(n)
	}
}

// checkDrains completes the drain requests whose partitions are idle.
func (s *scheduler) checkDrains() {
	kept := s.drains[:0]
	for _, d := range s.drains {
		idle := true
		for p := range d.parts {
			if t := s.tracks[p]; t != nil && len(t.entries) > 0 {
				idle = false
				break
			}
		}
		if idle {
			close(d.done)
		} else {
			kept = append(kept, d)
		}
	}
	s.drains = kept
}

func (s *scheduler) admit(in input) {
	if a := in.abandon; a != nil {
		if t, ok := s.lost[a.partition]; !ok || a.through > t {
			s.lost[a.partition] = a.through
		}
		s.e.log.Warn("dropping the records of a lost partition not yet sent to the sink", "partition", a.partition, "through", a.through)
		s.sweepAbandoned()
		return
	}
	if in.drain != nil {
		s.drains = append(s.drains, in.drain)
		s.checkDrains()
		return
	}
	if in.err != nil {
		s.inputDone = true
		if !errors.Is(in.err, io.EOF) {
			s.e.log.Error("source failed; draining", "err", in.err)
			s.fatal = fmt.Errorf("source: %w", in.err)
		}
		return
	}
	for _, n := range in.nodes {
		s.pending++
		s.pendingBytes += n.size
		s.e.stats.Records.Add(1)
		t := s.tracks[n.rec.Pos.Partition]
		if t == nil {
			t = &partitionTrack{name: n.rec.Pos.Partition}
			s.tracks[n.rec.Pos.Partition] = t
		}
		n.track, n.trackIdx = t, t.add(n.rec.Pos.Offset)
		if s.abandoned(n) {
			s.drop(n)
			continue
		}
		if n.w == nil && n.derr == nil {
			// Skipped by the decoder (an unmapped event, when configured).
			s.e.stats.Skipped.Add(1)
			s.complete(n)
			continue
		}
		if n.w == nil {
			// Undecodable: nothing depends on it, nothing to order.
			n.deadClass, n.deadErr = graft.RejectedClass(n.derr), n.derr.Error()
			s.e.stats.Invalid.Add(1)
			s.deadLetter(n)
			continue
		}
		if n.expired != "" {
			// Too old to apply: it is not applied, so it orders nothing.
			n.deadClass, n.deadErr = graft.ClassExpired, n.expired
			s.e.stats.Expired.Add(1)
			s.deadLetter(n)
			continue
		}
		s.e.stats.Writes.Add(1)
		s.e.stats.Ops.Add(int64(len(n.w.Ops)))
		s.link(n)
		if n.deps == 0 {
			s.makeReady(n)
		}
	}
}

// link adds n to the conflict graph: it depends on the latest pending node of
// each of its resources (its key and every vertex it touches).
func (s *scheduler) link(n *node) {
	add := func(r resource) {
		for _, have := range n.resources {
			if have == r {
				return
			}
		}
		n.resources = append(n.resources, r)
		if p := s.last[r]; p != nil && p != n {
			if len(p.succ) == 0 || p.succ[len(p.succ)-1] != n {
				p.succ = append(p.succ, n)
				n.deps++
			}
		}
		s.last[r] = n
	}
	n.resources = make([]resource, 0, 1+2*len(n.w.Ops))
	add(resource{key: true, id: n.w.Key})
	for i := range n.w.Ops {
		n.w.Ops[i].Vertices(func(id string) { add(resource{id: id}) })
	}
}

func (s *scheduler) makeReady(n *node) {
	if s.abandoned(n) {
		s.drop(n)
		return
	}
	if s.isQuarantined(n.key()) {
		n.deadClass = graft.ClassQuarantined
		n.deadErr = "an earlier write of key " + fmt.Sprintf("%q", n.key()) + " is in the dead letters (policy quarantine)"
		s.deadLetter(n)
		return
	}
	if len(s.readyQ) == 0 {
		s.readySince = time.Now()
	}
	n.state = ready
	heap.Push(&s.readyQ, n)
	s.readyUnits += n.units
}

func (s *scheduler) isQuarantined(key string) bool {
	s.e.qmu.Lock()
	defer s.e.qmu.Unlock()
	return s.e.quarantined[key]
}

func (s *scheduler) deadLetter(n *node) {
	n.state = dying
	s.dlPending = append(s.dlPending, n)
}

// complete marks n done: its successors may run, its position may be acked.
func (s *scheduler) complete(n *node) {
	if n.state == done {
		return
	}
	n.state = done
	s.pending--
	s.pendingBytes -= n.size
	s.budget.Release(1)
	s.budgetBytes.Release(s.byteWeight(n.size))
	for _, r := range n.resources {
		if s.last[r] == n {
			delete(s.last, r)
		}
	}
	for _, c := range n.succ {
		c.deps--
		if c.deps == 0 && c.state == waiting {
			s.makeReady(c)
		}
	}
	n.succ = nil
	if n.track.markDone(n.trackIdx) {
		s.acks.ack(graft.Position{Partition: n.track.name, Offset: n.track.acked})
		if len(s.drains) > 0 && len(n.track.entries) == 0 {
			s.checkDrains()
		}
	}
	n.w, n.rec.Value = nil, nil
}

// detach lets the writes that wait for a parked node only because they share
// a vertex with it go ahead: the missing endpoint may be created by one of
// them. Writes of its key keep waiting (per-key order). When it retries, the
// locked set keeps it out of any batch in flight on its vertices.
func (s *scheduler) detach(n *node) {
	key := n.key()
	kept := n.succ[:0]
	for _, c := range n.succ {
		if c.key() == key {
			kept = append(kept, c)
			continue
		}
		c.deps--
		if c.deps == 0 && c.state == waiting {
			s.makeReady(c)
		}
	}
	clear(n.succ[len(kept):])
	n.succ = kept
	for _, r := range n.resources {
		if s.last[r] == n && !r.key {
			delete(s.last, r)
		}
	}
	n.resources = []resource{{key: true, id: key}}
}

// lock counts the vertices of a batch in flight; conflicts reports whether a
// node touches any of them.
func (s *scheduler) lock(b []*node, delta int) {
	for _, n := range b {
		for i := range n.w.Ops {
			n.w.Ops[i].Vertices(func(id string) {
				if c := s.locked[id] + delta; c > 0 {
					s.locked[id] = c
				} else {
					delete(s.locked, id)
				}
			})
		}
	}
}

func (s *scheduler) conflicts(n *node) bool {
	if len(s.locked) == 0 {
		return false
	}
	hit := false
	for i := range n.w.Ops {
		n.w.Ops[i].Vertices(func(id string) { hit = hit || s.locked[id] > 0 })
	}
	return hit
}

func (s *scheduler) handle(r result) {
	if r.fatal != nil {
		s.fatal = &FatalError{Err: r.fatal}
		s.e.log.Error("stopping: the sink reports a fatal error", "err", r.fatal)
		return
	}
	if r.shrink {
		s.unitsCap = max(s.unitsCap/2, 1)
	} else if s.unitsCap < s.cfg.MaxBatchUnits {
		s.unitsCap = min(s.unitsCap+s.cfg.MaxBatchUnits/16+1, s.cfg.MaxBatchUnits)
	}
	for _, n := range r.dead {
		if s.cfg.Policy == Quarantine && n.deadClass != graft.ClassQuarantined {
			s.e.Quarantine(n.key())
		}
		s.deadLetter(n)
	}
	for _, n := range r.returned {
		n.state = waiting
	}
	for _, n := range r.parked {
		if s.abandoned(n) {
			n.state = waiting
			r.returned = append(r.returned, n) // dropped below, once ready
			continue
		}
		n.state = parked
		heap.Push(&s.parkQ, n)
		s.detach(n)
	}
	for _, n := range r.committed {
		s.complete(n)
	}
	for _, n := range r.returned {
		if n.state == waiting && n.deps == 0 {
			s.makeReady(n)
		}
	}
}

func (s *scheduler) unpark() {
	now := time.Now()
	for len(s.parkQ) > 0 && !s.parkQ[0].due.After(now) {
		n := heap.Pop(&s.parkQ).(*node)
		s.makeReady(n)
	}
}

// dispatch builds and sends batches while workers are idle and writes ready.
func (s *scheduler) dispatch() {
	for s.idle > 0 && len(s.readyQ) > 0 && s.fatal == nil {
		if !s.shouldFlush() {
			return
		}
		b := s.build()
		if len(b) == 0 {
			s.readySince = time.Now() // all ready writes wait for a batch in flight
			return
		}
		// The worker follows dependencies inside its batch only, on a list
		// of its own: succ keeps growing on this goroutine.
		for _, n := range b {
			n.batchSucc = n.batchSucc[:0]
			for _, c := range n.succ {
				if c.mark == n.mark && c.state == batched {
					n.batchSucc = append(n.batchSucc, c)
				}
			}
		}
		s.idle--
		s.e.stats.Batches.Add(1)
		s.lock(b, +1)
		s.work <- b
		if len(s.readyQ) > 0 {
			s.readySince = time.Now()
		}
	}
}

// shouldFlush: a batch is worth sending now rather than lingering for more.
func (s *scheduler) shouldFlush() bool {
	switch {
	case s.inputDone || s.stopping:
		return true
	case s.readyUnits >= s.unitsCap || len(s.readyQ) >= s.cfg.MaxBatchWrites:
		return true
	case time.Since(s.readySince) >= s.cfg.Linger:
		return true
	case s.pending >= s.cfg.MaxInflightRecords*9/10 || s.pendingBytes >= s.cfg.MaxInflightBytes*9/10:
		return true // the source is (nearly) paused: no more is coming
	}
	return false
}

// build takes ready nodes in arrival order into one batch, together with the
// nodes that become ready because their only missing predecessors are in the
// batch: writes that share a hot vertex go in the same batch, in order
// (invariant 5), instead of queueing behind each other.
func (s *scheduler) build() []*node {
	s.batchID++
	id := s.batchID
	var (
		batch        []*node
		units, bytes int
		cand         seqHeap // eligible because of this batch
		inBatchDeps  = map[*node]int{}
		deferred     []*node
	)
	defer func() {
		for _, n := range deferred {
			heap.Push(&s.readyQ, n)
			s.readyUnits += n.units
		}
	}()
	for {
		var n *node
		switch {
		case len(s.readyQ) > 0 && (len(cand) == 0 || s.readyQ[0].seq < cand[0].seq):
			n = s.readyQ[0]
		case len(cand) > 0:
			n = cand[0]
		default:
			return batch
		}
		if len(batch) > 0 && (len(batch) >= s.cfg.MaxBatchWrites || units+n.units > s.unitsCap || bytes+n.size > s.cfg.MaxBatchBytes) {
			return batch
		}
		hot := n.state != ready
		if hot {
			heap.Pop(&cand)
		} else {
			heap.Pop(&s.readyQ)
			s.readyUnits -= n.units
		}
		if s.conflicts(n) {
			// Only after a parked write was detached: it is in flight on a
			// vertex of n. n waits (invariant 5).
			if n.state == ready {
				deferred = append(deferred, n)
			}
			continue
		}
		if hot {
			s.e.stats.InHotBatches.Add(1)
		}
		n.state, n.mark = batched, id
		batch = append(batch, n)
		units += n.units
		bytes += n.size
		for _, c := range n.succ {
			if c.state != waiting {
				continue
			}
			inBatchDeps[c]++
			if inBatchDeps[c] == c.deps {
				if s.isQuarantined(c.key()) || s.abandoned(c) {
					continue // dead-lettered once its predecessors are done
				}
				heap.Push(&cand, c)
			}
		}
	}
}
