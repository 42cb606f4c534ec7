package engine

// Stage 2, schedule: the conflict graph. A write depends on the latest
// pending write of its key and of every vertex it touches (invariants 1 and
// 5); a done write releases its successors and moves the acknowledgement
// watermark.

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/graftdb/graft"
)

// link adds n to the conflict graph: it depends on the latest pending node of
// each of its resources (its key and every vertex it touches). Behind a
// parked write of its key (or a deferred one) it is deferred: it waits for
// the earlier writes of its vertices, but later writes of other keys do not
// wait for it on them (see detach).
func (s *scheduler) link(n *node) {
	key := resource{key: true, id: n.w.Key}
	if p := s.last[key]; p != nil && (p.state == parked || p.deferred) {
		n.deferred = true
	}
	add := func(r resource) {
		for _, have := range n.resources {
			if have == r {
				return
			}
		}
		if p := s.last[r]; p != nil && p != n {
			if len(p.succ) == 0 || p.succ[len(p.succ)-1] != n {
				p.succ = append(p.succ, n)
				n.deps++
			}
		}
		if n.deferred && !r.key {
			return
		}
		n.resources = append(n.resources, r)
		s.last[r] = n
	}
	n.linked = true
	n.resources = make([]resource, 0, 1+2*len(n.w.Ops))
	add(key)
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
	if n.held {
		s.budget.unhold(s.byteWeight(n.size))
		n.held = false
	}
	if len(s.readyQ) == 0 {
		s.readySince = time.Now()
	}
	n.state = ready
	if !s.releasing && len(s.parkedOn) > 0 {
		s.releasing = s.releases(n)
	}
	if len(s.missing) > 0 {
		s.ahead = append(s.ahead, n) // parkAllAhead looks at it
	}
	heap.Push(&s.readyQ, n)
	s.readyUnits += n.units
}

// countCreators counts the vertices a write upserts, while it is held.
func (s *scheduler) countCreators(n *node, delta int) {
	if n.w == nil || !n.linked {
		return
	}
	for i := range n.w.Ops {
		op := &n.w.Ops[i]
		if op.Kind != graft.UpsertVertex {
			continue
		}
		set := s.creators[op.ID]
		switch {
		case delta > 0 && set == nil:
			s.creators[op.ID] = map[*node]struct{}{n: {}}
		case delta > 0:
			set[n] = struct{}{}
		default:
			delete(set, n)
			if len(set) == 0 {
				delete(s.creators, op.ID)
			}
		}
	}
}

// hold moves a node that can only wait (parked, or behind earlier writes)
// out of the in-flight bound, if the held bound has room (budget).
func (s *scheduler) hold(n *node) {
	if n.held {
		return
	}
	if s.budget.hold(s.byteWeight(n.size)) {
		n.held = true
		return
	}
	s.unheld = append(s.unheld, n) // held later, when there is room
}

// holdWaiting holds the waiting writes that found no room when they began
// to wait, now that there may be some.
func (s *scheduler) holdWaiting() {
	for len(s.unheld) > 0 {
		n := s.unheld[0]
		if n.held || (n.state != waiting && n.state != parked) {
			s.unheld = s.unheld[1:]
			continue
		}
		if !s.budget.hold(s.byteWeight(n.size)) {
			return
		}
		n.held = true
		s.unheld = s.unheld[1:]
	}
	if cap(s.unheld) > 1024 && len(s.unheld) < cap(s.unheld)/4 {
		s.unheld = append([]*node(nil), s.unheld...)
	}
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
	s.budget.release(n.held, s.byteWeight(n.size))
	n.held = false
	s.countCreators(n, -1)
	if s.parkedKey[n.key()] == n {
		delete(s.parkedKey, n.key())
	}
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
	s.pacer.done(n.rec.Pos.Partition)
	if n.track.markDone(n.trackIdx) && !n.track.retired {
		s.acks.ack(graft.Position{Partition: n.track.name, Offset: n.track.acked})
		if len(s.drains) > 0 && len(n.track.entries) == 0 {
			s.checkDrains()
		}
	}
	n.w, n.rec.Value = nil, nil
}

// detach lets the writes that wait for a parked node only because they share
// a vertex with it go ahead: the missing endpoint may be created by one of
// them. Writes of its key keep waiting (per-key order), and are deferred in
// the same way: a write held behind a parked one of its key cannot run
// either, so it must not hold its vertices. Otherwise a late hub can wait
// forever behind such a write — say k1's w1, which links s1 to hub s0 and
// waits behind k1's parked w101 (it needs s100); s0's write waits behind w1
// on s0, s100's behind s0's on their key — while one-by-one application
// would have set w101 and w1 aside and gone on. When a detached write runs,
// the locked set keeps it out of any batch in flight on its vertices.
func (s *scheduler) detach(n *node) {
	for todo := []*node{n}; len(todo) > 0; {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		key := n.key()
		kept := n.succ[:0]
		for _, c := range n.succ {
			if c.key() == key {
				kept = append(kept, c)
				if !c.deferred && c.state == waiting {
					c.deferred = true
					todo = append(todo, c)
				}
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
