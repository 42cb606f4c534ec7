package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/graftdb/graft"
)

// execution runs one batch to a terminal outcome for each of its writes:
// committed, dead-lettered, parked, or returned to the scheduler. It is the
// one place where retries, backoff, shrinking and bisection happen.
type execution struct {
	e    *Engine
	ctx  context.Context
	r    result
	gone map[*node]bool // parked, returned or dead under quarantine: not in this run any more
}

func (e *Engine) execute(ctx context.Context, nodes []*node) result {
	x := &execution{e: e, ctx: ctx, gone: map[*node]bool{}, r: result{batch: nodes}}
	queue := [][]*node{nodes}
	for len(queue) > 0 {
		cur := x.filter(queue[0])
		queue = queue[1:]
		more, stop := x.run(cur)
		if stop {
			for _, q := range queue {
				x.returnAll(q)
			}
			break
		}
		queue = append(more, queue...)
	}
	return x.r
}

// run applies cur until it commits, and returns sub-batches to run next when
// it had to split. stop means the run ends (fatal error or shutdown).
func (x *execution) run(cur []*node) (split [][]*node, stop bool) {
	attempt := 0
	for len(cur) > 0 {
		if cur = x.leaveAbandoned(cur); len(cur) == 0 {
			return nil, false
		}
		err := x.apply(cur)
		if err == nil {
			return nil, false
		}
		if x.ctx.Err() != nil {
			x.returnAll(cur)
			return nil, true
		}
		now := time.Now()
		for _, n := range cur {
			n.attempts++
			if n.firstFail.IsZero() {
				n.firstFail = now
			}
			n.lastFail = now
		}
		class, idx := graft.ClassOf(err), graft.IndexOf(err)
		if idx < 0 && len(cur) == 1 {
			idx = 0
		}
		switch class {
		case graft.Fatal:
			x.r.fatal = err
			x.returnAll(cur)
			return nil, true
		case graft.Permanent, graft.MissingEndpoint, graft.TooLarge:
			if idx < 0 || (class == graft.TooLarge && len(cur) > 1) {
				// The sink cannot say which write failed: bisect.
				x.e.stats.Bisections.Add(1)
				x.r.shrink = x.r.shrink || class == graft.TooLarge
				h := len(cur) / 2
				return [][]*node{cur[:h], cur[h:]}, false
			}
			target := cur[idx]
			if class != graft.TooLarge && replayGone(target) {
				// A later write of a batch that may have committed deleted
				// a vertex it writes or links to: apply again without its
				// ops on that vertex (replay.go).
				continue
			}
			if class == graft.MissingEndpoint {
				x.park(target, err)
			} else {
				x.dead(target, class, err)
			}
			cur = x.filter(cur)
			attempt = 0
		case graft.Conflict:
			x.e.stats.Conflicts.Add(1)
			x.e.stats.Retries.Add(1)
			if !x.backoff(attempt) {
				x.returnAll(cur)
				return nil, true
			}
			attempt++
			if len(cur) > 1 && attempt >= 2 {
				// Shrink: smaller transactions hold fewer locks.
				x.r.shrink = true
				h := len(cur) / 2
				return [][]*node{cur[:h], cur[h:]}, false
			}
		default: // Transient, Reconnect, Throttled
			markInDoubt(cur) // the batch may have committed
			x.e.stats.Retries.Add(1)
			if class == graft.Throttled {
				x.r.shrink = true
			}
			if attempt == 3 || attempt%20 == 19 {
				x.e.log.Warn("sink keeps failing; retrying", "class", class.String(), "attempt", attempt+1, "err", err)
			}
			if !x.backoff(attempt) {
				x.returnAll(cur)
				return nil, true
			}
			attempt++
		}
	}
	return nil, false
}

// apply plans cur against the write cache and applies it in one transaction.
// With a shared cache: refresh the batch's entries, plan, mark the elements
// the batch writes, apply, then publish (or forget) them.
func (x *execution) apply(cur []*node) error {
	cache := x.e.cache
	shared := cache != nil && cache.shared != nil
	var ws []*graft.Write // the batch's writes, for the locker and the shared cache
	if x.e.cfg.Locker != nil || shared {
		ws = make([]*graft.Write, len(cur))
		for i, n := range cur {
			ws[i] = n.w
		}
	}
	ctx, fence := x.ctx, uint64(0)
	if x.e.cfg.Locker != nil {
		lctx, lease, release, err := x.lock(ws)
		if err != nil {
			return graft.NewError(graft.Transient, err)
		}
		defer release()
		ctx, fence = lctx, lease.Token
	}
	var gen uint64
	if shared {
		var ok bool
		if gen, ok = cache.refresh(x.ctx, batchKeys(ws)); !ok {
			cache, shared = nil, false // bypassed: nothing is eliminated
		}
	}
	p := newPlanner(cache)
	if shared {
		p.gen = gen
	}
	b := &graft.Batch{Writes: make([]*graft.Write, 0, len(cur)), Fence: fence}
	index := make([]int, 0, len(cur)) // batch index → cur index
	for i, n := range cur {
		if w := p.plan(replayed(n)); w != nil && len(w.Ops) > 0 {
			b.Writes = append(b.Writes, w)
			index = append(index, i)
		}
	}
	x.e.stats.CacheHits.Add(int64(p.hits))
	x.e.stats.CacheMisses.Add(int64(p.misses))
	var ticket *graft.SharedTicket
	if shared && len(b.Writes) > 0 {
		ticket = x.begin(cache, b.Writes, p.used)
	}
	if len(b.Writes) > 0 {
		x.e.stats.Applies.Add(1)
		if err := x.e.sink.Apply(ctx, b); err != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) && x.ctx.Err() == nil {
				err = graft.NewError(graft.Conflict, fmt.Errorf("%w: %v", cause, err))
			}
			x.e.cache.forget(p)
			if ticket != nil {
				if aerr := cache.shared.c.Abort(context.WithoutCancel(x.ctx), *ticket); aerr != nil {
					cache.shared.failed(cache, aerr)
				}
			}
			if ge, ok := err.(*graft.Error); ok && ge.Index >= 0 && ge.Index < len(index) {
				return &graft.Error{Class: ge.Class, Index: index[ge.Index], Err: ge.Err}
			}
			if graft.IndexOf(err) >= 0 {
				return graft.NewError(graft.ClassOf(err), err)
			}
			return err
		}
	}
	var versions map[string]uint64
	if ticket != nil {
		if err := cache.shared.c.Publish(context.WithoutCancel(x.ctx), *ticket, p.facts(ticket.Keys)); err != nil {
			cache.shared.failed(cache, err)
		} else {
			versions = make(map[string]uint64, len(ticket.Keys))
			for i, k := range ticket.Keys {
				versions[k] = ticket.Versions[i]
			}
		}
	}
	cache.learn(p, versions) // nil (disabled or bypassed): learns nothing
	x.e.stats.Eliminated.Add(int64(p.eliminated))
	x.e.stats.Coalesced.Add(int64(p.coalesced))
	x.e.stats.Committed.Add(int64(len(cur)))
	x.r.committed = append(x.r.committed, cur...)
	return nil
}

// begin marks the elements the planned writes change in the shared cache.
// When it fails, the cache is bypassed from the next batch on; this one was
// planned with facts loaded before the failure and goes ahead.
func (x *execution) begin(cache *writeCache, ws []*graft.Write, used map[string]uint64) *graft.SharedTicket {
	keys := batchKeys(ws)
	planned := make([]uint64, len(keys))
	for i, k := range keys {
		planned[i] = used[k]
	}
	deletes := false
	for _, w := range ws {
		for i := range w.Ops {
			deletes = deletes || w.Ops[i].Kind == graft.DeleteVertex
		}
	}
	t, err := cache.shared.c.Begin(x.ctx, keys, planned, deletes)
	if err != nil {
		cache.shared.failed(cache, err)
		return nil
	}
	t.Epoch = cache.shared.epoch.Load()
	return &t
}

// filter removes the nodes that are gone, and those that depend on them.
func (x *execution) filter(cur []*node) []*node {
	out := cur[:0:0]
	for _, n := range cur {
		if !x.gone[n] {
			out = append(out, n)
		}
	}
	return out
}

// leave takes n out of this run, with every later node of the batch that
// depends on it: they go back to the scheduler to wait for it.
func (x *execution) leave(n *node) {
	for _, c := range n.batchSucc {
		if !x.gone[c] {
			x.gone[c] = true
			x.r.returned = append(x.r.returned, c)
			x.leave(c)
		}
	}
}

// leaveAbandoned takes out of a batch about to be retried the records
// whose partition was lost since it was built: the scheduler drops them
// (makeReady). A batch retried for minutes against a store that does not
// answer would otherwise land them after the new owner's writes.
func (x *execution) leaveAbandoned(cur []*node) []*node {
	any := false
	for _, n := range cur {
		if !x.gone[n] && x.e.lost.covers(n) {
			x.gone[n], any = true, true
			x.r.returned = append(x.r.returned, n)
			x.leave(n)
		}
	}
	if !any {
		return cur
	}
	return x.filter(cur)
}

func (x *execution) returnAll(cur []*node) {
	for _, n := range cur {
		if !x.gone[n] {
			x.gone[n] = true
			x.r.returned = append(x.r.returned, n)
		}
	}
}

// park sets n aside until a missing endpoint may have appeared, or gives up
// on it once it has waited ParkFor.
func (x *execution) park(n *node, err error) {
	now := time.Now()
	n.parkedSince, n.parkDelay = nextPark(n, now, x.e.cfg)
	// Past ParkFor the scheduler decides (handle): it gives up unless the
	// endpoint is on its way (a pending write creates it, or the reader is
	// held back and may not have read it yet).
	n.parkExpired = now.Add(n.parkDelay).Sub(n.parkedSince) > x.e.cfg.ParkFor
	if n.parkExpired {
		x.probeMissing(n)
	}
	n.parkErr = err.Error()
	x.e.stats.Parked.Add(1)
	n.due = now.Add(n.parkDelay)
	x.gone[n] = true
	x.r.parked = append(x.r.parked, n)
	x.leave(n)
}

// dead gives up on n. Its successors in the batch go on (policy continue), or
// every later write of its key goes back to be quarantined.
func (x *execution) dead(n *node, class graft.Class, err error) {
	n.deadClass, n.deadErr = class.String(), err.Error()
	x.gone[n] = true
	x.r.dead = append(x.r.dead, n)
	if x.e.cfg.Policy == Quarantine {
		x.e.Quarantine(n.key())
		x.leave(n)
	}
}

// backoff sleeps a full-jitter exponential delay; false when stopped.
func (x *execution) backoff(attempt int) bool {
	d := x.e.cfg.BackoffBase << min(attempt, 20)
	if d > x.e.cfg.BackoffMax || d <= 0 {
		d = x.e.cfg.BackoffMax
	}
	t := time.NewTimer(rand.N(d) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-x.ctx.Done():
		return false
	}
}

// deadLetterLoop writes letters durably, then hands their nodes back to be
// completed (and so acknowledged).
func (s *scheduler) deadLetterLoop(ctx context.Context) {
	for nodes := range s.dlWork {
		letters := make([]*graft.Letter, len(nodes))
		for i, n := range nodes {
			letters[i] = s.e.letter(n)
		}
		for attempt := 0; ; attempt++ {
			err := s.e.dlq.Append(ctx, letters)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return // not acknowledged: replayed after restart
			}
			s.e.log.Error("cannot write dead letters; retrying", "err", err, "attempt", attempt+1)
			x := &execution{e: s.e, ctx: ctx}
			if !x.backoff(attempt + 5) {
				return
			}
		}
		s.e.stats.DeadLetters.Add(int64(len(nodes)))
		s.dlDone <- nodes
	}
}

func (e *Engine) letter(n *node) *graft.Letter {
	now := time.Now().UTC()
	l := &graft.Letter{
		Key: n.key(), Position: n.rec.Pos, Class: n.deadClass, Error: n.deadErr,
		Attempts: n.attempts, FirstFailure: n.firstFail.UTC(), LastFailure: n.lastFail.UTC(),
		RawBytes: n.size, SourceKey: n.rec.Key, SourceRef: n.rec.Ref,
	}
	if n.w != nil {
		l.WriteID = n.w.ID
	}
	if l.Attempts == 0 {
		l.Attempts = 1
	}
	if n.firstFail.IsZero() {
		l.FirstFailure, l.LastFailure = now, now
	}
	if p := n.rec.Prior; p != nil {
		l.Attempts += p.Attempts
		l.Position, l.SourceRef = p.Position, p.SourceRef // where the record first came from
		if !p.FirstFailure.IsZero() {
			l.FirstFailure = p.FirstFailure
		}
		if p.RawTruncated {
			l.RawTruncated, l.RawBytes = true, p.RawBytes
		}
	}
	if n.rec.Truncated > 0 {
		l.RawTruncated, l.RawBytes = true, n.rec.Truncated
	}
	l.SetRaw(n.rec.Value)
	return l
}
