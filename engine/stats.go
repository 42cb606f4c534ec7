package engine

import (
	"sync/atomic"
)

// Stats are the engine's counters, safe to read while it runs. Every field
// has a row in Counters, from which snapshots, metrics and summaries are
// made: adding a counter is a field here, one in Snapshot and a row there
// (TestCountersCoverStats checks all three agree).
type Stats struct {
	Records     atomic.Int64 // records taken from the source
	Writes      atomic.Int64 // records that decoded into writes
	Invalid     atomic.Int64 // records that did not decode
	Expired     atomic.Int64 // records older than MaxRecordAge (dead-lettered)
	Lost        atomic.Int64 // letters for records the source lost (graft.Record.Lost)
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
	ParkedAhead   atomic.Int64 // writes parked without a transaction: a vertex they need is known missing
	InHotBatches  atomic.Int64 // writes batched behind a conflicting write of the same batch
	Abandoned     atomic.Int64 // records dropped unapplied: their partition was lost (graft.Abandoner)
	Paused        atomic.Int64 // partitions paused at the per-partition in-flight bound (graft.Pauser)
	SourceErrors  atomic.Int64 // source errors that can heal, each retried after a backoff
}

// Snapshot is a copy of Stats at one instant.
type Snapshot struct {
	Records, Writes, Invalid, Expired, Lost, Skipped, Ops, Committed, DeadLetters int64
	Eliminated, Coalesced                                                         int64
	Batches, Applies, Retries, Conflicts, Bisections                              int64
	Parked, ParkedAhead, InHotBatches, Abandoned, Paused                          int64
	CacheHits, CacheMisses, CacheErrors                                           int64
	LocksAcquired, LockWaits, LockWaitNanos, LeasesLost                           int64
	SourceErrors                                                                  int64
}

// InFlight is the records taken from the source and not yet committed or
// dead-lettered.
func (s Snapshot) InFlight() int64 {
	return s.Records - s.Committed - s.DeadLetters - s.Skipped - s.Abandoned
}

// Counter is one engine counter: where it lives, its Prometheus metric, and
// its key in run summaries (graft ingest --json), if any.
type Counter struct {
	Metric  string // graft_<Metric>
	Help    string
	Summary string  // key in summaries; "" when not in them
	Scale   float64 // the metric is the counter times Scale (nanoseconds → seconds); 0 means 1
	stat    func(*Stats) *atomic.Int64
	snap    func(*Snapshot) *int64
}

// Value is the counter's value in a snapshot.
func (c Counter) Value(s *Snapshot) int64 { return *c.snap(s) }

// Counters lists every engine counter, in the order summaries print them.
var Counters = []Counter{
	{"records_total", "Records taken from the source.", "writes", 0, func(s *Stats) *atomic.Int64 { return &s.Records }, func(s *Snapshot) *int64 { return &s.Records }},
	{"ops_total", "Ops of decoded writes.", "ops", 0, func(s *Stats) *atomic.Int64 { return &s.Ops }, func(s *Snapshot) *int64 { return &s.Ops }},
	{"writes_committed_total", "Writes committed to the sink.", "committed", 0, func(s *Stats) *atomic.Int64 { return &s.Committed }, func(s *Snapshot) *int64 { return &s.Committed }},
	{"ops_eliminated_total", "Ops dropped because the write cache proved them applied.", "eliminated_ops", 0, func(s *Stats) *atomic.Int64 { return &s.Eliminated }, func(s *Snapshot) *int64 { return &s.Eliminated }},
	{"cache_hits_total", "Write-cache lookups that found the element.", "cache_hits", 0, func(s *Stats) *atomic.Int64 { return &s.CacheHits }, func(s *Snapshot) *int64 { return &s.CacheHits }},
	{"cache_misses_total", "Write-cache lookups that did not find the element.", "cache_misses", 0, func(s *Stats) *atomic.Int64 { return &s.CacheMisses }, func(s *Snapshot) *int64 { return &s.CacheMisses }},
	{"ops_coalesced_total", "Ops dropped as redundant with an earlier op of their batch.", "coalesced_ops", 0, func(s *Stats) *atomic.Int64 { return &s.Coalesced }, func(s *Snapshot) *int64 { return &s.Coalesced }},
	{"dead_letters_total", "Records dead-lettered.", "dead_letters", 0, func(s *Stats) *atomic.Int64 { return &s.DeadLetters }, func(s *Snapshot) *int64 { return &s.DeadLetters }},
	{"records_invalid_total", "Records that did not decode (dead-lettered).", "invalid", 0, func(s *Stats) *atomic.Int64 { return &s.Invalid }, func(s *Snapshot) *int64 { return &s.Invalid }},
	{"records_skipped_total", "Records the mapping skipped (unmapped: skip).", "skipped", 0, func(s *Stats) *atomic.Int64 { return &s.Skipped }, func(s *Snapshot) *int64 { return &s.Skipped }},
	{"batches_total", "Batches dispatched to the sink.", "batches", 0, func(s *Stats) *atomic.Int64 { return &s.Batches }, func(s *Snapshot) *int64 { return &s.Batches }},
	{"sink_conflicts_total", "Conflicts reported by the sink.", "conflicts", 0, func(s *Stats) *atomic.Int64 { return &s.Conflicts }, func(s *Snapshot) *int64 { return &s.Conflicts }},
	{"sink_retries_total", "Failed sink transactions retried.", "retries", 0, func(s *Stats) *atomic.Int64 { return &s.Retries }, func(s *Snapshot) *int64 { return &s.Retries }},
	{"writes_parked_total", "Writes parked for a missing edge endpoint.", "parked", 0, func(s *Stats) *atomic.Int64 { return &s.Parked }, func(s *Snapshot) *int64 { return &s.Parked }},
	{"writes_parked_ahead_total", "Writes parked without a transaction: a vertex they need was just found missing by another parked write.", "", 0, func(s *Stats) *atomic.Int64 { return &s.ParkedAhead }, func(s *Snapshot) *int64 { return &s.ParkedAhead }},
	{"records_decoded_total", "Records that decoded into writes.", "", 0, func(s *Stats) *atomic.Int64 { return &s.Writes }, func(s *Snapshot) *int64 { return &s.Writes }},
	{"records_lost_total", "Losses the source reported: records it knew of but could not read (a damaged stream), each loss dead-lettered with class lost.", "", 0, func(s *Stats) *atomic.Int64 { return &s.Lost }, func(s *Snapshot) *int64 { return &s.Lost }},
	{"records_expired_total", "Records older than the max record age (dead-lettered).", "", 0, func(s *Stats) *atomic.Int64 { return &s.Expired }, func(s *Snapshot) *int64 { return &s.Expired }},
	{"cache_shared_errors_total", "Shared write cache (Redis) failures; the cache is bypassed until it answers.", "", 0, func(s *Stats) *atomic.Int64 { return &s.CacheErrors }, func(s *Snapshot) *int64 { return &s.CacheErrors }},
	{"locks_acquired_total", "Key leases taken by batches (locker).", "", 0, func(s *Stats) *atomic.Int64 { return &s.LocksAcquired }, func(s *Snapshot) *int64 { return &s.LocksAcquired }},
	{"lock_waits_total", "Leases that waited for another holder or for the locker.", "", 0, func(s *Stats) *atomic.Int64 { return &s.LockWaits }, func(s *Snapshot) *int64 { return &s.LockWaits }},
	{"lock_wait_seconds_total", "Time spent acquiring key leases.", "", 1e-9, func(s *Stats) *atomic.Int64 { return &s.LockWaitNanos }, func(s *Snapshot) *int64 { return &s.LockWaitNanos }},
	{"lock_leases_lost_total", "Leases that expired while their batch ran (the sink's fencing refuses such a batch).", "", 0, func(s *Stats) *atomic.Int64 { return &s.LeasesLost }, func(s *Snapshot) *int64 { return &s.LeasesLost }},
	{"sink_transactions_total", "Sink transactions attempted.", "", 0, func(s *Stats) *atomic.Int64 { return &s.Applies }, func(s *Snapshot) *int64 { return &s.Applies }},
	{"bisections_total", "Batches split to isolate a failing write.", "", 0, func(s *Stats) *atomic.Int64 { return &s.Bisections }, func(s *Snapshot) *int64 { return &s.Bisections }},
	{"records_abandoned_total", "Records dropped unapplied because their partition was lost to another instance.", "", 0, func(s *Stats) *atomic.Int64 { return &s.Abandoned }, func(s *Snapshot) *int64 { return &s.Abandoned }},
	{"partitions_paused_total", "Times a partition was paused at the per-partition in-flight bound (max_inflight_per_partition).", "", 0, func(s *Stats) *atomic.Int64 { return &s.Paused }, func(s *Snapshot) *int64 { return &s.Paused }},
	{"source_errors_total", "Source errors that can heal (a missed heartbeat, a reconnection), each retried after a backoff.", "", 0, func(s *Stats) *atomic.Int64 { return &s.SourceErrors }, func(s *Snapshot) *int64 { return &s.SourceErrors }},
	{"writes_batched_behind_conflict_total", "Writes put in the batch of a write they conflict with (conflicts avoided by scheduling).", "", 0, func(s *Stats) *atomic.Int64 { return &s.InHotBatches }, func(s *Snapshot) *int64 { return &s.InHotBatches }},
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	var out Snapshot
	for _, c := range Counters {
		*c.snap(&out) = c.stat(s).Load()
	}
	return out
}

// Summary is a run's counters under their summary keys, in the order of
// Counters (the --json summaries of graft ingest and graft dlq redrive).
func (s Snapshot) Summary() []KeyValue {
	var out []KeyValue
	for _, c := range Counters {
		if c.Summary != "" {
			out = append(out, KeyValue{c.Summary, c.Value(&s)})
		}
	}
	return out
}

// KeyValue is one entry of a summary.
type KeyValue struct {
	Key   string
	Value int64
}
