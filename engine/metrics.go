package engine

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the engine's Prometheus metrics (all documented in
// docs/operations.md). Labels are bounded: none carries a key or an id.
func (e *Engine) Collectors() []prometheus.Collector {
	s := &e.stats
	counter := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: name, Help: help},
			func() float64 { return float64(f()) })
	}
	return []prometheus.Collector{
		counter("records_total", "Records taken from the source.", s.Records.Load),
		counter("records_invalid_total", "Records that did not decode (dead-lettered).", s.Invalid.Load),
		counter("records_expired_total", "Records older than the max record age (dead-lettered).", s.Expired.Load),
		counter("records_skipped_total", "Records the mapping skipped (unmapped: skip).", s.Skipped.Load),
		counter("ops_total", "Ops of decoded writes.", s.Ops.Load),
		counter("writes_committed_total", "Writes committed to the sink.", s.Committed.Load),
		counter("dead_letters_total", "Records dead-lettered.", s.DeadLetters.Load),
		counter("ops_eliminated_total", "Ops dropped because the write cache proved them applied.", s.Eliminated.Load),
		counter("ops_coalesced_total", "Ops dropped as redundant with an earlier op of their batch.", s.Coalesced.Load),
		counter("cache_hits_total", "Write-cache lookups that found the element.", s.CacheHits.Load),
		counter("cache_misses_total", "Write-cache lookups that did not find the element.", s.CacheMisses.Load),
		counter("cache_shared_errors_total", "Shared write cache (Redis) failures; the cache is bypassed until it answers.", s.CacheErrors.Load),
		counter("locks_acquired_total", "Key leases taken by batches (locker).", s.LocksAcquired.Load),
		counter("lock_waits_total", "Leases that waited for another holder or for the locker.", s.LockWaits.Load),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: "lock_wait_seconds_total", Help: "Time spent acquiring key leases."},
			func() float64 { return float64(s.LockWaitNanos.Load()) / 1e9 }),
		counter("lock_leases_lost_total", "Leases that expired while their batch ran (the sink's fencing refuses such a batch).", s.LeasesLost.Load),
		counter("batches_total", "Batches dispatched to the sink.", s.Batches.Load),
		counter("sink_transactions_total", "Sink transactions attempted.", s.Applies.Load),
		counter("sink_retries_total", "Failed sink transactions retried.", s.Retries.Load),
		counter("sink_conflicts_total", "Conflicts reported by the sink.", s.Conflicts.Load),
		counter("bisections_total", "Batches split to isolate a failing write.", s.Bisections.Load),
		counter("writes_parked_total", "Writes parked for a missing edge endpoint.", s.Parked.Load),
		counter("records_abandoned_total", "Records dropped unapplied because their partition was lost to another instance.", s.Abandoned.Load),
		counter("writes_batched_behind_conflict_total", "Writes put in the batch of a write they conflict with (conflicts avoided by scheduling).", s.InHotBatches.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "graft", Name: "records_in_flight", Help: "Records taken from the source and not yet committed or dead-lettered."},
			func() float64 { return float64(s.Records.Load() - s.Committed.Load() - s.DeadLetters.Load()) }),
	}
}
