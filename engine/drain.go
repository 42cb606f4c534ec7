package engine

// Partitions that leave: a drain waits until every record of the partitions
// is done (a Kafka revoke); an abandonment drops what was not yet sent (a
// Kinesis lease taken by another instance).

import (
	"container/heap"
	"context"
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
