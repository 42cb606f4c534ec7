package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/graftdb/graft"
)

// Policy is what happens to a key after one of its writes is dead-lettered.
type Policy string

// Dead-letter policies.
const (
	// Continue: later writes of the key go on (the default).
	Continue Policy = "continue"
	// Quarantine: later writes of the key are dead-lettered too, until the
	// dead letters are redriven.
	Quarantine Policy = "quarantine"
)

// Config tunes the engine. The zero value of a field means its default.
type Config struct {
	// Limits bound one record (bytes, ops per write).
	Limits graft.Limits
	// MaxRecordAge dead-letters, with class "expired", a record the source
	// timestamped longer ago than this when the engine takes it (0: no
	// limit). Records without a timestamp never expire.
	MaxRecordAge time.Duration
	// MaxInflightRecords and MaxInflightBytes bound the records admitted but
	// not yet committed or dead-lettered; the source pauses at the bound.
	MaxInflightRecords int
	MaxInflightBytes   int
	// MaxInflightPerPartition bounds the records of one partition read and
	// not yet done, for sources that can pause a partition (graft.Pauser:
	// Kafka): a revoke or a handoff then drains at most this many records of
	// it, not the whole in-flight bound. 0: 1000; negative: no bound.
	MaxInflightPerPartition int
	// MaxBatchWrites, MaxBatchUnits and MaxBatchBytes bound one batch; 0
	// means what the sink reports, and a larger value is capped by it.
	MaxBatchWrites int
	MaxBatchUnits  int
	MaxBatchBytes  int
	// Concurrency is the number of batches in flight (0: the sink's; capped
	// by the sink).
	Concurrency int
	// Linger is how long a partial batch waits for more writes.
	Linger time.Duration
	// BackoffBase and BackoffMax bound the full-jitter backoff of retries.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// ParkDelay is the first wait of a write whose edge has a missing
	// endpoint; it doubles per retry. ParkFor is how long the write may stay
	// parked in all before it is dead-lettered.
	ParkDelay time.Duration
	ParkFor   time.Duration
	// Policy after a dead letter: Continue or Quarantine.
	Policy Policy
	// DrainTimeout bounds the graceful stop.
	DrainTimeout time.Duration
	// DeriveVersions gives a write without a version the one its source
	// derives for its record (graft.Versioner; docs/DESIGN.md, "Versions"):
	// every write is then versioned, and a sink that guards versions
	// applies them as if in version order. Run refuses a source that
	// derives none.
	DeriveVersions bool
	// CacheSize is the number of elements the write cache remembers; negative
	// disables it.
	CacheSize int
	// SharedCache, when set, is the write cache shared with the other graft
	// processes of the graph (Redis); the in-process cache (CacheSize > 0)
	// stays in front of it.
	SharedCache graft.SharedCache
	// Locker, when set, gives every batch a lease on its writes' keys
	// before it is applied (docs/cache.md, "Locker"); LockTTL is the lease's
	// time to live, renewed every third of it while the batch runs.
	Locker  graft.Locker
	LockTTL time.Duration
	// Decode, when set, turns a record into a write instead of the wire
	// format's decoder (mapping rules). A nil write with a nil error skips
	// the record (acknowledged, nothing written); an error wrapping
	// graft.ErrUnmapped is dead-lettered with class "unmapped".
	Decode func(graft.Record) (*graft.Write, error)
	// Logger receives events worth a human's attention.
	Logger *slog.Logger
}

// MinLockTTL is the shortest lease a locker may be given: it is renewed
// every third of it, which must leave room for a round trip to Redis.
const MinLockTTL = 300 * time.Millisecond

// Default returns the defaults.
func Default() Config {
	return Config{
		Limits:                  graft.DefaultLimits,
		MaxInflightRecords:      10000,
		MaxInflightBytes:        32 << 20,
		MaxInflightPerPartition: 1000,
		Linger:                  5 * time.Millisecond,
		BackoffBase:             20 * time.Millisecond,
		BackoffMax:              5 * time.Second,
		ParkDelay:               100 * time.Millisecond,
		ParkFor:                 30 * time.Second,
		Policy:                  Continue,
		DrainTimeout:            30 * time.Second,
		CacheSize:               50000,
		LockTTL:                 10 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := Default()
	set := func(v *int, dv int) {
		if *v == 0 {
			*v = dv
		}
	}
	setD := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	set(&c.Limits.MaxRecordBytes, d.Limits.MaxRecordBytes)
	set(&c.Limits.MaxOps, d.Limits.MaxOps)
	set(&c.MaxInflightRecords, d.MaxInflightRecords)
	set(&c.MaxInflightBytes, d.MaxInflightBytes)
	set(&c.MaxInflightPerPartition, d.MaxInflightPerPartition)
	set(&c.CacheSize, d.CacheSize)
	setD(&c.Linger, d.Linger)
	setD(&c.BackoffBase, d.BackoffBase)
	setD(&c.BackoffMax, d.BackoffMax)
	setD(&c.ParkDelay, d.ParkDelay)
	setD(&c.ParkFor, d.ParkFor)
	setD(&c.DrainTimeout, d.DrainTimeout)
	setD(&c.LockTTL, d.LockTTL)
	if c.Policy == "" {
		c.Policy = d.Policy
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every invalid field, named by its path in graft.yaml.
// It is the one rule set of the engine's settings: the configuration file
// (package config) and every command use it. Zero is each field's default.
func (c Config) Validate() error {
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative; 0 is the default (got %d)", name, v))
		}
	}
	neg("limits.max_record_bytes", int64(c.Limits.MaxRecordBytes))
	neg("limits.max_ops", int64(c.Limits.MaxOps))
	neg("max_inflight_records", int64(c.MaxInflightRecords))
	neg("max_inflight_bytes", int64(c.MaxInflightBytes))
	neg("batch.max_writes", int64(c.MaxBatchWrites))
	neg("batch.max_units", int64(c.MaxBatchUnits))
	neg("batch.max_bytes", int64(c.MaxBatchBytes))
	neg("concurrency", int64(c.Concurrency))
	neg("batch.linger", int64(c.Linger))
	neg("retry.backoff_base", int64(c.BackoffBase))
	neg("retry.backoff_max", int64(c.BackoffMax))
	neg("retry.park_delay", int64(c.ParkDelay))
	neg("retry.park_for", int64(c.ParkFor))
	neg("drain_timeout", int64(c.DrainTimeout))
	neg("limits.max_record_age", int64(c.MaxRecordAge))
	neg("lock.ttl", int64(c.LockTTL))
	if c.LockTTL > 0 && c.LockTTL < MinLockTTL {
		errs = append(errs, fmt.Errorf("lock.ttl: %v is too short to renew (at least %v; default 10s)", c.LockTTL, MinLockTTL))
	}
	if c.SharedCache != nil && c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("cache.size: a shared cache needs the in-process cache in front of it (got %d)", c.CacheSize))
	}
	if c.Policy != "" && c.Policy != Continue && c.Policy != Quarantine {
		errs = append(errs, fmt.Errorf("dead_letters.policy: %q is not continue or quarantine", c.Policy))
	}
	if c.BackoffMax != 0 && c.BackoffBase > c.BackoffMax {
		errs = append(errs, fmt.Errorf("retry.backoff_base: %v is above retry.backoff_max %v", c.BackoffBase, c.BackoffMax))
	}
	return errors.Join(errs...)
}
