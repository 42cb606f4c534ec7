package engine

// Stage 1, read: records are fetched, charged against the in-flight budget
// (invariant 7), decoded or mapped, and admitted into the conflict graph.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/graftdb/graft"
)

// readLoop fetches records, takes in-flight budget for each, decodes them and
// hands them to the scheduler in order.
func (s *scheduler) readLoop(ctx context.Context) {
	var seq uint64
	failures := 0 // consecutive healable source errors
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
		s.pacer.fetched(recs)
		nodes := make([]*node, 0, len(recs))
		for i := range recs {
			rec := recs[i]
			size := len(rec.Value)
			if err := s.budget.acquire(ctx, s.byteWeight(size)); err != nil {
				return
			}
			seq++
			n := &node{seq: seq, rec: rec, size: size}
			switch {
			case rec.Lost != "": // nothing to decode: admit dead-letters it
			case rec.Truncated > 0:
				n.derr = &graft.FieldError{Msg: fmt.Sprintf("record is %d bytes, over the limit of %d bytes", rec.Truncated, s.cfg.Limits.MaxRecordBytes)}
			case s.cfg.Decode != nil:
				n.w, n.derr = s.cfg.Decode(rec)
			default:
				n.w, n.derr = graft.Decode(rec.Value, rec.Key, s.cfg.Limits)
			}
			if n.w != nil {
				if n.w.Version == 0 && s.cfg.DeriveVersions {
					n.w.Version = rec.Version
				}
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
		if err != nil && healable(err) && ctx.Err() == nil {
			// A source error that can heal (a missed heartbeat, a
			// reconnection, a leader change) is retried with backoff, and
			// shown by Ready and the metrics meanwhile: it must not stop
			// the service.
			failures++
			s.e.stats.SourceErrors.Add(1)
			if failures == 1 {
				s.e.log.Warn("source failed; retrying", "err", err)
			}
			s.e.sourceErr.Store(&err)
			x := &execution{e: s.e, ctx: ctx}
			if !x.backoff(min(failures, 8)) {
				return
			}
			continue
		}
		if failures > 0 && err == nil {
			s.e.log.Warn("source reads again", "failures", failures)
			s.e.sourceErr.Store(nil)
			failures = 0
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

// healable reports whether a source error can heal: the source classed it
// transient, throttled or reconnect (graft.NewError). Anything else stops
// the engine with the error.
func healable(err error) bool {
	var ge *graft.Error
	if !errors.As(err, &ge) {
		return false
	}
	switch ge.Class {
	case graft.Transient, graft.Throttled, graft.Reconnect:
		return true
	}
	return false
}

// byteWeight is what a record of size bytes costs against MaxInflightBytes:
// its raw bytes (kept for dead letters) plus its decoded form, measured at
// about three times the raw size for typical writes (ops, property maps,
// conflict-domain keys).
func (s *scheduler) byteWeight(size int) int64 {
	return min(int64(size)*4, int64(s.cfg.MaxInflightBytes))
}

func (s *scheduler) admit(in input) {
	if a := in.abandon; a != nil {
		s.abandon(a)
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
		s.admitted = n.seq
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
		if n.rec.Lost != "" {
			// Records the source knows it lost: say so loudly and keep a
			// letter for them; there is nothing to apply.
			n.deadClass, n.deadErr = graft.ClassLost, n.rec.Lost
			s.e.stats.Lost.Add(1)
			s.e.log.Error("the source lost records: they are not in the graph", "partition", n.rec.Pos.Partition, "position", n.rec.Pos.Offset, "lost", n.rec.Lost)
			s.deadLetter(n)
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
		s.countCreators(n, +1)
		if n.deps == 0 {
			s.makeReady(n)
		} else {
			s.hold(n) // it waits: its place goes to the records behind it
		}
	}
}
