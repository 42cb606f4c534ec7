package engine

// Parking: writes that wait for a missing edge endpoint. A parked write is
// retried at its due time (the delay doubles, up to ParkFor in all) or at
// once when a write that proves the endpoint exists commits.
//
// When a write fails for a missing endpoint and needs exactly one vertex it
// does not upsert itself, that vertex is known to be missing: the write is
// its witness. While a witness is parked, a ready write that needs the same
// vertex is parked ahead, without a transaction that can only fail. A late
// hub with a thousand dependents then costs one failed transaction, not a
// thousand one after the other (issue 17, item 1).

import (
	"container/heap"
	"errors"
	"fmt"
	"time"

	"github.com/graftdb/graft"
)

// needs calls fn for every vertex w needs to exist and does not upsert
// itself before: the endpoints of its upserted edges, the source and
// targets of its replaceEdges. It reports false, calling nothing, when w
// deletes a vertex: what it needs then depends on its own ops.
func needs(w *graft.Write, fn func(id string)) bool {
	if w == nil {
		return false
	}
	for i := range w.Ops {
		if w.Ops[i].Kind == graft.DeleteVertex {
			return false
		}
	}
	eachNeed(w, func(id string, _ bool) { fn(id) })
	return true
}

// eachNeed calls fn for every vertex an upserted edge or a replaceEdges of
// w needs and w does not upsert itself before it; deleted says w deleted
// it before (nothing outside w can give it back in time).
func eachNeed(w *graft.Write, fn func(id string, deleted bool)) {
	var own map[string]bool // true: upserted by w so far; false: deleted
	need := func(id string) {
		if up, ok := own[id]; !ok || !up {
			fn(id, ok)
		}
	}
	for i := range w.Ops {
		op := &w.Ops[i]
		switch op.Kind {
		case graft.UpsertVertex, graft.DeleteVertex:
			if own == nil {
				own = map[string]bool{}
			}
			own[op.ID] = op.Kind == graft.UpsertVertex
		case graft.UpsertEdge:
			need(op.From)
			need(op.To)
		case graft.ReplaceEdges:
			need(op.From)
			for _, t := range op.Targets {
				need(t)
			}
		}
	}
}

// witness records what a write that has just failed for a missing endpoint
// tells: if it needs one vertex only, that vertex is missing.
func (s *scheduler) witness(n *node) {
	sole, many := "", false
	ok := needs(n.w, func(id string) {
		if sole == "" {
			sole = id
		} else if id != sole {
			many = true
		}
	})
	if ok && sole != "" && !many {
		n.witnessOf = sole
		s.missing[sole]++
	}
}

// parkAllAhead parks ahead the writes made ready while a vertex was known
// missing, and those their parking releases, at once: a chain of writes
// that share a late vertex is set aside in one pass of the scheduler, not
// one batch (or one linger) each.
func (s *scheduler) parkAllAhead() {
	for len(s.ahead) > 0 {
		n := s.ahead[len(s.ahead)-1]
		s.ahead = s.ahead[:len(s.ahead)-1]
		if n.state != ready {
			continue
		}
		if v, ok := s.mayParkAhead(n); ok {
			heap.Remove(&s.readyQ, n.hidx)
			s.readyUnits -= n.units
			s.parkAhead(n, v)
		}
	}
	if cap(s.ahead) > 1024 {
		s.ahead = nil
	}
}

// mayParkAhead reports whether n needs a vertex a parked witness found
// missing, and may wait for it without a transaction. It may not when its
// time to wait is up: then the sink has the last word (a real attempt, and
// dead-lettering after ParkFor only on the sink's own error).
func (s *scheduler) mayParkAhead(n *node) (vertex string, ok bool) {
	v := s.knownMissing(n)
	if v == "" {
		return "", false
	}
	return v, s.mayWait(n)
}

// mayWait reports whether n's next park stays within ParkFor.
func (s *scheduler) mayWait(n *node) bool {
	now := time.Now()
	since, delay := nextPark(n, now, s.cfg)
	return now.Add(delay).Sub(since) <= s.cfg.ParkFor
}

// nextPark is when n's parking began and how long its next park lasts: the
// first one ParkDelay, each next one twice the last, at most ParkFor.
func nextPark(n *node, now time.Time, cfg Config) (since time.Time, delay time.Duration) {
	if n.parkedSince.IsZero() {
		return now, cfg.ParkDelay
	}
	return n.parkedSince, min(2*n.parkDelay, cfg.ParkFor)
}

// parkAhead parks n, which is in no queue, until v may exist.
func (s *scheduler) parkAhead(n *node, v string) {
	now := time.Now()
	n.parkedSince, n.parkDelay = nextPark(n, now, s.cfg)
	n.due = now.Add(n.parkDelay)
	n.parkErr = fmt.Sprintf("edge endpoint %q does not exist (yet)", v)
	s.e.stats.ParkedAhead.Add(1)
	s.setAside(n)
}

// knownMissing returns a vertex n needs that a parked witness found
// missing, or "".
func (s *scheduler) knownMissing(n *node) string {
	if len(s.missing) == 0 {
		return ""
	}
	v := ""
	needs(n.w, func(id string) {
		if v == "" && s.missing[id] > 0 {
			v = id
		}
	})
	return v
}

// setAside puts a parked write in the park queue: it holds no place in the
// in-flight bound, the writes that wait for it only because they share a
// vertex go ahead, and it is woken by what it names.
func (s *scheduler) setAside(n *node) {
	n.state = parked
	s.pacer.parkedIn(n.rec.Pos.Partition, +1)
	s.parkedKey[n.key()] = n
	heap.Push(&s.parkQ, n)
	s.detach(n)
	s.hold(n)
	s.parkOn(n)
}

// unpark makes the parked writes whose time has come ready again.
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
// Such a write is not dead-lettered; it is retried when the endpoint's
// write commits (wakeParked). An endpoint the write cache knows to exist is
// not the one it misses: the writes that upsert it do not count.
//
// A write that can run only after a parked write of its key (deferred)
// counts while that parked write is within its first ParkFor: it is then
// applied or given up on soon. Past it, or when that parked write is n
// itself, it does not: with it counted, two parked writes each waiting for
// a vertex that a write behind the other upserts waited for each other
// forever (a random workload with vertices deleted for good showed it).
func (s *scheduler) endpointOnItsWay(n *node) bool {
	if n.doomed {
		return false // nothing outside the write can give it what it deletes
	}
	if s.budget.starved() || s.pacer.holding() {
		return true // the reader is held back: the endpoint may be unread
	}
	ids := n.missing
	if !n.missingKnown {
		ids, _ = externalEndpoints(n.w)
	} else if len(ids) == 0 {
		return true // they exist now: try again
	}
	now := time.Now()
	for _, id := range ids {
		if !n.missingKnown && s.e.cache.exists(id) {
			continue // not the endpoint it misses
		}
		for c := range s.creators[id] {
			if s.mayRunSoon(c, n, now) {
				return true
			}
		}
	}
	return false
}

// externalEndpoints lists, once each, the vertices w's edges need that w
// does not upsert before them; doomed is true when an edge needs a vertex
// w itself deleted before it.
func externalEndpoints(w *graft.Write) (ids []string, doomed bool) {
	seen := map[string]bool{}
	eachNeed(w, func(id string, deleted bool) {
		switch {
		case deleted:
			doomed = true
		case !seen[id]:
			seen[id] = true
			ids = append(ids, id)
		}
	})
	return ids, doomed
}

// probeMissing asks the sink's reader, when it has one, which endpoints a
// write whose parking expired misses: the scheduler then waits only for
// writes that create those (endpointOnItsWay). A write that also links to
// a vertex that exists, upserted by many pending writes, otherwise waited
// as long as they kept coming. Runs on a worker, never the scheduler; a
// failed read leaves it unknown.
func (x *execution) probeMissing(n *node) {
	n.missing, n.missingKnown = nil, false
	ids, doomed := externalEndpoints(n.w)
	n.doomed = doomed
	r, ok := x.e.sink.(graft.Reader)
	if !ok || doomed {
		return
	}
	var missing []string
	for _, id := range ids {
		_, err := r.Vertex(x.ctx, id)
		switch {
		case errors.Is(err, graft.ErrNotFound):
			missing = append(missing, id)
		case err != nil:
			return
		}
	}
	if len(missing) == 0 {
		// The endpoints exist now: try again, once; a sink that fails
		// again while its reader says they exist is not believed twice.
		if n.probedAllExist {
			return
		}
		n.probedAllExist = true
	}
	n.missing, n.missingKnown = missing, true
}

// mayRunSoon reports whether c can run without waiting for n, or for a
// parked write past its first ParkFor.
func (s *scheduler) mayRunSoon(c, n *node, now time.Time) bool {
	if c == n || c.state == done || c.state == dying {
		return false
	}
	if !c.deferred {
		return true
	}
	h := s.parkedKey[c.key()]
	switch {
	case h == nil:
		return true
	case h == n:
		return false // behind n in its key
	case h.state != parked:
		return true // its key's parked write is being tried again
	}
	return now.Before(h.parkedSince.Add(s.cfg.ParkFor))
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

// unparkOn removes a node from the index (and from the witnesses).
func (s *scheduler) unparkOn(n *node) {
	s.pacer.parkedIn(n.rec.Pos.Partition, -1)
	if v := n.witnessOf; v != "" {
		n.witnessOf = ""
		if s.missing[v]--; s.missing[v] <= 0 {
			delete(s.missing, v)
		}
	}
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
// committed write has just upserted, or has just shown to exist while it
// was known missing (an edge to it committed: another process created it),
// instead of at their next due time: the writes that waited for a late hub
// go out together, in one batch.
func (s *scheduler) wakeParked(n *node) {
	if len(s.parkedOn) == 0 || n.w == nil {
		return
	}
	for i := range n.w.Ops {
		if op := &n.w.Ops[i]; op.Kind == graft.UpsertVertex {
			s.wakeOn(op.ID)
		}
	}
	if len(s.missing) > 0 {
		needs(n.w, func(id string) {
			if s.missing[id] > 0 {
				s.wakeOn(id)
			}
		})
	}
}

// releases reports whether n upserts a vertex parked writes wait for: it
// goes out without lingering for a fuller batch.
func (s *scheduler) releases(n *node) bool {
	for i := range n.w.Ops {
		if op := &n.w.Ops[i]; op.Kind == graft.UpsertVertex && len(s.parkedOn[op.ID]) > 0 {
			return true
		}
	}
	return false
}

func (s *scheduler) wakeOn(id string) {
	waiting := s.parkedOn[id]
	if len(waiting) == 0 {
		return
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
