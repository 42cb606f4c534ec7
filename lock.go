package graft

import (
	"context"
	"time"
)

// Locker gives a batch leases on the keys of its writes, for deployments
// where one key can reach several graft processes (lock/redis). Every key
// of a batch is taken at once or none is (no deadlock, no partial hold).
type Locker interface {
	// Acquire takes every key for ttl, or none: ok is false when another
	// holder has one of them.
	Acquire(ctx context.Context, keys []string, ttl time.Duration) (l Lease, ok bool, err error)
	// Renew extends the lease; false when it was lost (expired and taken).
	Renew(ctx context.Context, l Lease, ttl time.Duration) (bool, error)
	// Release gives the keys back (only those the lease still holds).
	Release(ctx context.Context, l Lease) error
}

// Lease is a set of keys held together, with the fencing token the sink
// checks (graft.Batch.Fence).
type Lease struct {
	Keys  []string
	Token uint64
	Value string // what the lock keys hold: owner and token
}
