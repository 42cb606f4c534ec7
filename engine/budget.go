package engine

import (
	"context"
	"sync"
)

// budget bounds the records in flight (invariant 7) without letting waiting
// records starve the reader (invariant 12). A record the reader admits is
// active and counts against the in-flight bound (max_inflight_records and
// bytes); the reader waits while that bound is reached. A record that can
// only wait — parked on a missing endpoint, or behind an earlier write of
// its key or vertices — is moved to the held bound (HeldFactor times the
// in-flight one) while there is room, which frees its place for the
// records that may release it: a late hub vertex, a parked write's
// endpoint. It becomes active again when it is ready. The total in memory
// stays within in-flight + held.
type budget struct {
	mu      sync.Mutex
	freed   chan struct{} // closed when room is freed, then replaced
	waiting bool          // the reader waits for room

	active, activeBytes int64
	held, heldBytes     int64
	maxActive, maxBytes int64
	maxHeld, maxHeldB   int64
}

// HeldFactor is how many times the in-flight bound waiting records may
// take besides it.
const HeldFactor = 4

func newBudget(records, bytes int) *budget {
	return &budget{
		freed:     make(chan struct{}),
		maxActive: int64(records), maxBytes: int64(bytes),
		maxHeld: HeldFactor * int64(records), maxHeldB: HeldFactor * int64(bytes),
	}
}

// acquire waits for room for one record of weight w (the reader). A record
// heavier than the whole bound is let in alone.
func (b *budget) acquire(ctx context.Context, w int64) error {
	for {
		b.mu.Lock()
		if b.active < b.maxActive && (b.activeBytes+w <= b.maxBytes || b.active == 0) {
			b.active++
			b.activeBytes += w
			b.waiting = false
			b.mu.Unlock()
			return nil
		}
		b.waiting = true
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			b.mu.Lock()
			b.waiting = false
			b.mu.Unlock()
			return ctx.Err()
		}
	}
}

// signal wakes the reader if it waits; b.mu held.
func (b *budget) signal() {
	if !b.waiting {
		return
	}
	close(b.freed)
	b.freed = make(chan struct{})
}

// hold moves an active record to the held bound if there is room there.
func (b *budget) hold(w int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held >= b.maxHeld || b.heldBytes+w > b.maxHeldB {
		return false
	}
	b.active--
	b.activeBytes -= w
	b.held++
	b.heldBytes += w
	b.signal()
	return true
}

// unhold makes a held record active again; the active count may then pass
// its bound, which only makes the reader wait longer.
func (b *budget) unhold(w int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held--
	b.heldBytes -= w
	b.active++
	b.activeBytes += w
}

// release frees a record's place.
func (b *budget) release(held bool, w int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if held {
		b.held--
		b.heldBytes -= w
	} else {
		b.active--
		b.activeBytes -= w
	}
	b.signal()
}

// full reports whether the reader waits for room: nothing more will come
// in until records are done (or held).
func (b *budget) full() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting
}

// starved reports whether the reader waits and no waiting record can be
// moved aside: records that would release the parked ones may be unread.
func (b *budget) starved() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiting && (b.held >= b.maxHeld || b.heldBytes >= b.maxHeldB)
}
