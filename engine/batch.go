package engine

// Stage 3, batch: ready writes are built into batches (hot vertices in one
// batch), dispatched to idle workers, and their results handled: committed,
// returned, parked or dead-lettered.

import (
	"container/heap"
	"time"

	"github.com/graftdb/graft"
)

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
		if n.parkExpired {
			if !s.endpointOnItsWay(n) {
				// Nothing this engine holds creates the endpoint, and the
				// reader reads on: give up (invariant 12 holds as far as
				// the engine can see).
				n.deadClass, n.deadErr = graft.MissingEndpoint.String(), n.parkErr
				if s.cfg.Policy == Quarantine {
					s.e.Quarantine(n.key())
				}
				s.deadLetter(n)
				continue
			}
			n.parkExpired = false
			n.due = time.Now().Add(s.cfg.ParkFor)
		}
		s.setAside(n)
		s.witness(n)
	}
	for _, n := range r.committed {
		s.wakeParked(n)
		s.complete(n)
	}
	for _, n := range r.returned {
		switch {
		case n.state == waiting && n.deps == 0:
			s.makeReady(n)
		case n.state == waiting:
			s.hold(n) // back behind an earlier write: it only waits
		}
	}
}

// dispatch builds and sends batches while workers are idle and writes ready.
func (s *scheduler) dispatch() {
	for s.idle > 0 && len(s.readyQ) > 0 && s.fatal == nil {
		if !s.shouldFlush() {
			return
		}
		b := s.build()
		s.releasing = false
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
	case s.releasing:
		return true // a ready write releases parked ones: do not linger
	case time.Since(s.readySince) >= s.cfg.Linger:
		return true
	case s.budget.full():
		return true // the source is paused: no more is coming
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
		if v := s.knownMissing(n); v != "" {
			if hot {
				continue // it would fail: it waits for its predecessors, then parks ahead
			}
			if s.mayWait(n) {
				s.parkAhead(n, v)
				continue
			}
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
