package engine

// The scheduler: one goroutine owns every scheduling structure, and its run
// loop moves records through the stages below, talking to the reader, the
// workers and the dead-letter goroutine over channels.

import (
	"context"
	"sync"
	"time"

	"github.com/graftdb/graft"
)

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
	pacer        *pacer
	pending      int // nodes admitted and not done
	pendingBytes int
	idle         int
	batchID      uint32
	unitsCap     int // adaptive batch unit limit (shrinks on conflict)

	budget    *budget
	parkedOn  map[string][]*node            // vertex → parked writes that name it (woken when it is written)
	creators  map[string]map[*node]struct{} // vertex → writes held and not done that upsert it
	parkedKey map[string]*node              // key → its parked write (the key's first pending one), while parked
	missing   map[string]int                // vertex → parked writes that found it missing (witnesses)
	releasing bool                          // a ready write upserts a vertex parked writes wait for
	ahead     []*node                       // writes made ready while a vertex was known missing (park.go)
	unheld    []*node                       // waiting writes the held bound had no room for
	inputDone bool
	stopping  bool
	fatal     error

	acks      *acker
	dlPending []*node // dead letters not yet handed to the dead-letter goroutine
	drains    []*drainReq
	admitted  uint64        // seq of the last node admitted
	exited    chan struct{} // closed when run returns
	dlBusy    int           // batches of dead letters being written
}

func newScheduler(e *Engine, src graft.Source) *scheduler {
	cfg := e.cfg
	return &scheduler{
		e: e, src: src, cfg: cfg,
		in:        make(chan input, 16),
		results:   make(chan result, cfg.Concurrency),
		dlDone:    make(chan []*node, 16),
		work:      make(chan []*node),
		dlWork:    make(chan []*node),
		last:      map[resource]*node{},
		locked:    map[string]int{},
		tracks:    map[string]*partitionTrack{},
		idle:      cfg.Concurrency,
		unitsCap:  cfg.MaxBatchUnits,
		budget:    newBudget(cfg.MaxInflightRecords, cfg.MaxInflightBytes),
		pacer:     newPacer(src, cfg.MaxInflightPerPartition, &e.stats),
		parkedOn:  map[string][]*node{},
		creators:  map[string]map[*node]struct{}{},
		parkedKey: map[string]*node{},
		missing:   map[string]int{},
		exited:    make(chan struct{}),
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
		s.parkAllAhead()
		s.holdWaiting()
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
