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
		n.state = parked
		heap.Push(&s.parkQ, n)
		s.detach(n)
		s.hold(n)
		s.parkOn(n)
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

func (s *scheduler) unpark() {
	now := time.Now()
	for len(s.parkQ) > 0 && !s.parkQ[0].due.After(now) {
		n := heap.Pop(&s.parkQ).(*node)
		s.unparkOn(n)
		s.makeReady(n)
	}
}

// endpointOnItsWay reports whether a parked write's missing endpoint may
// still come: a write the engine holds upserts one of its edges' endpoints,
// or the reader is held back by the bounds and may not have read it yet.
// Such a write is never dead-lettered; it is retried when the endpoint's
// write commits (wakeParked).
func (s *scheduler) endpointOnItsWay(n *node) bool {
	if s.budget.starved() {
		return true
	}
	own := map[string]bool{} // what the write upserts itself is not on its way
	for i := range n.w.Ops {
		if op := &n.w.Ops[i]; op.Kind == graft.UpsertVertex {
			own[op.ID] = true
		}
	}
	for i := range n.w.Ops {
		op := &n.w.Ops[i]
		if !op.Kind.IsEdge() {
			continue
		}
		for _, id := range append([]string{op.From, op.To}, op.Targets...) {
			if !own[id] && s.creators[id] > 0 {
				return true
			}
		}
	}
	return false
}

// parkOn indexes a parked node by the endpoints of its edges, one of which
// it waits for.
func (s *scheduler) parkOn(n *node) {
	for i := range n.w.Ops {
		op := &n.w.Ops[i]
		if !op.Kind.IsEdge() {
			continue
		}
		s.parkedOn[op.From] = append(s.parkedOn[op.From], n)
		if op.Kind == graft.ReplaceEdges {
			for _, t := range op.Targets {
				s.parkedOn[t] = append(s.parkedOn[t], n)
			}
		} else {
			s.parkedOn[op.To] = append(s.parkedOn[op.To], n)
		}
	}
}

// unparkOn removes a node from the index.
func (s *scheduler) unparkOn(n *node) {
	for i := range n.w.Ops {
		op := &n.w.Ops[i]
		if !op.Kind.IsEdge() {
			continue
		}
		ids := append([]string{op.From, op.To}, op.Targets...)
		for _, id := range ids {
			l := s.parkedOn[id]
			for j := 0; j < len(l); j++ {
				if l[j] == n {
					l[j] = l[len(l)-1]
					l = l[:len(l)-1]
					j--
				}
			}
			if len(l) == 0 {
				delete(s.parkedOn, id)
			} else {
				s.parkedOn[id] = l
			}
		}
	}
}

// wakeParked retries at once the parked writes that wait for a vertex a
// committed write has just upserted, instead of at their next due time:
// the writes that waited for a late hub go out together, in one batch.
func (s *scheduler) wakeParked(n *node) {
	if len(s.parkedOn) == 0 || n.w == nil {
		return
	}
	for i := range n.w.Ops {
		op := &n.w.Ops[i]
		if op.Kind != graft.UpsertVertex {
			continue
		}
		waiting := s.parkedOn[op.ID]
		if len(waiting) == 0 {
			continue
		}
		for _, p := range append([]*node(nil), waiting...) {
			if p.state != parked {
				continue
			}
			heap.Remove(&s.parkQ, p.hidx)
			s.unparkOn(p)
			s.makeReady(p)
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
