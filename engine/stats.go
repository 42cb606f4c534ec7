package engine

import (
	"sync/atomic"
)

// Stats are the engine's counters, safe to read while it runs.
type Stats struct {
	Records     atomic.Int64 // records taken from the source
	Writes      atomic.Int64 // records that decoded into writes
	Invalid     atomic.Int64 // records that did not decode
	Expired     atomic.Int64 // records older than MaxRecordAge (dead-lettered)
	Skipped     atomic.Int64 // records the decoder skipped (unmapped events, when configured)
	Ops         atomic.Int64 // ops of decoded writes
	Committed   atomic.Int64 // writes committed
	DeadLetters atomic.Int64 // records dead-lettered (invalid ones included)
	Eliminated  atomic.Int64 // ops dropped because the write cache proved them applied
	Coalesced   atomic.Int64 // ops dropped as redundant with an earlier op of their batch
	CacheHits   atomic.Int64 // write-cache lookups that found the element
	CacheMisses atomic.Int64 // write-cache lookups that did not
	CacheErrors atomic.Int64 // shared-cache (Redis) failures; the cache is bypassed after each

	LocksAcquired atomic.Int64 // leases taken by batches (locker)
	LockWaits     atomic.Int64 // leases that had to wait for another holder or the locker
	LockWaitNanos atomic.Int64 // time spent acquiring leases
	LeasesLost    atomic.Int64 // leases that expired while their batch ran
	Batches       atomic.Int64 // batches dispatched
	Applies       atomic.Int64 // sink transactions attempted
	Retries       atomic.Int64 // failed sink transactions retried
	Conflicts     atomic.Int64 // sink conflicts (each one retried)
	Bisections    atomic.Int64 // batches split to isolate a failing write
	Parked        atomic.Int64 // writes parked for a missing endpoint
	InHotBatches  atomic.Int64 // writes batched behind a conflicting write of the same batch
	Abandoned     atomic.Int64 // records dropped unapplied: their partition was lost (graft.Abandoner)
}

// Snapshot is a copy of Stats at one instant.
type Snapshot struct {
	Records, Writes, Invalid, Expired, Skipped, Ops, Committed, DeadLetters int64
	Eliminated, Coalesced                                                   int64
	Batches, Applies, Retries, Conflicts, Bisections                        int64
	Parked, InHotBatches, Abandoned                                         int64
	CacheHits, CacheMisses, CacheErrors                                     int64
	LocksAcquired, LockWaits, LockWaitNanos, LeasesLost                     int64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	return Snapshot{
		Records: s.Records.Load(), Writes: s.Writes.Load(), Invalid: s.Invalid.Load(), Expired: s.Expired.Load(), Skipped: s.Skipped.Load(), Ops: s.Ops.Load(),
		Committed: s.Committed.Load(), DeadLetters: s.DeadLetters.Load(),
		Eliminated: s.Eliminated.Load(), Coalesced: s.Coalesced.Load(),
		CacheHits: s.CacheHits.Load(), CacheMisses: s.CacheMisses.Load(), CacheErrors: s.CacheErrors.Load(),
		LocksAcquired: s.LocksAcquired.Load(), LockWaits: s.LockWaits.Load(), LockWaitNanos: s.LockWaitNanos.Load(), LeasesLost: s.LeasesLost.Load(),
		Batches: s.Batches.Load(), Applies: s.Applies.Load(), Retries: s.Retries.Load(),
		Conflicts: s.Conflicts.Load(), Bisections: s.Bisections.Load(),
		Parked: s.Parked.Load(), InHotBatches: s.InHotBatches.Load(), Abandoned: s.Abandoned.Load(),
	}
}
