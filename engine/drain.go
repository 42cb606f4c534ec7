package engine

// Partitions that leave: a drain waits until every record of the partitions
// is done (a Kafka revoke); an abandonment drops what was not yet sent (a
// Kinesis lease taken by another instance).

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
)

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

// lostMark says which records of a lost partition are dropped: those at or
// before offset through, and, once the partition came back (lifted), only
// those admitted before it was lost (seq at most seq): what is read after
// that, at whatever offsets, is applied.
type lostMark struct {
	through int64
	seq     uint64
	lifted  bool
}

func (m lostMark) covers(n *node) bool {
	return n.rec.Pos.Offset <= m.through && (!m.lifted || n.seq <= m.seq)
}

// lostMarks are the lost partitions: the scheduler records them, and the
// workers read them too (a batch retried at the sink leaves out the
// records abandoned since, exec.go).
type lostMarks struct {
	mu  sync.Mutex
	m   map[string]lostMark
	any atomic.Bool // a partition was ever lost: covers has something to look up
}

func (l *lostMarks) get(partition string) (lostMark, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.m[partition]
	return m, ok
}

func (l *lostMarks) set(partition string, m lostMark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]lostMark{}
	}
	l.m[partition] = m
	l.any.Store(true)
}

// covers reports whether n belongs to a partition lost at or after it.
func (l *lostMarks) covers(n *node) bool {
	if !l.any.Load() {
		return false
	}
	m, ok := l.get(n.rec.Pos.Partition)
	return ok && m.covers(n)
}

// abandon records a lost partition and drops what it can of its records
// now; its acknowledgement track is retired, so that neither the dropped
// records nor those still at the sink move its watermark: a partition read
// again from its last commit (Kafka) starts a new track. A negative
// through says the partition is (again) this engine's: it lifts the
// abandonment for records admitted from now on. (What the write cache
// holds of the partition's elements needs no purge: such a source runs
// with the shared cache, which every batch consults afresh, or none; Run.)
func (s *scheduler) abandon(a *abandonReq) {
	if a.through < 0 {
		if m, ok := s.e.lost.get(a.partition); ok && !m.lifted {
			m.lifted = true
			s.e.lost.set(a.partition, m)
		}
		return
	}
	m, ok := s.e.lost.get(a.partition)
	if !ok || m.lifted || a.through > m.through {
		m.through = a.through
	}
	m.seq, m.lifted = s.admitted, false
	s.e.lost.set(a.partition, m)
	s.retire(s.tracks[a.partition])
	s.e.log.Warn("dropping the records of a lost partition not yet sent to the sink", "partition", a.partition, "through", a.through)
	s.sweepAbandoned()
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
func (s *scheduler) abandoned(n *node) bool { return s.e.lost.covers(n) }

// drop completes an abandoned node without applying it. Its track is
// retired first: a dropped record is never acknowledged, whatever track it
// was admitted on (the partition's next records start a new one).
func (s *scheduler) drop(n *node) {
	s.retire(n.track)
	s.e.stats.Abandoned.Add(1)
	s.complete(n)
}

// retire stops a track's acknowledgements; the partition's next records
// start a new track.
func (s *scheduler) retire(t *partitionTrack) {
	if t == nil || t.retired {
		return
	}
	t.retired = true
	s.pacer.lost(t.name)
	if s.tracks[t.name] == t {
		delete(s.tracks, t.name)
	}
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
		if n.state == parked {
			s.unparkOn(n)
		}
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
