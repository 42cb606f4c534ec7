package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/graftdb/graft"
)

// errLeaseLost cancels a batch whose lease could not be renewed.
var errLeaseLost = errors.New("lock lease lost")

// lock takes the batch's keys, waiting while another holder has one; while
// the locker fails, the engine waits (and reports not ready) — it never
// writes unlocked. It returns a context that is cancelled if the lease is
// lost, and a function that stops renewing and releases.
func (x *execution) lock(ws []*graft.Write) (context.Context, *graft.Lease, func(), error) {
	e := x.e
	b := graft.Batch{Writes: ws}
	keys := b.FenceKeys()
	ttl := e.cfg.LockTTL
	start := time.Now()
	waited := false
	for attempt := 0; ; attempt++ {
		l, ok, err := e.cfg.Locker.Acquire(x.ctx, keys, ttl)
		switch {
		case err == nil && ok:
			if e.lockDown.Swap(false) {
				e.log.Warn("locker: reachable again; writing resumes")
			}
			e.stats.LocksAcquired.Add(1)
			e.stats.LockWaitNanos.Add(int64(time.Since(start)))
			if waited {
				e.stats.LockWaits.Add(1)
			}
			return x.keepLease(l, ttl)
		case err != nil:
			if x.ctx.Err() != nil {
				return nil, nil, nil, x.ctx.Err()
			}
			if !e.lockDown.Swap(true) {
				e.log.Error("locker: unreachable; writing is paused until it answers (never unlocked)", "err", err)
			}
			e.lockErr.Store(fmt.Errorf("locker unreachable: %w", err))
		}
		waited = true
		d := min(time.Duration(1<<min(attempt, 6))*5*time.Millisecond, 500*time.Millisecond)
		d = d/2 + rand.N(d/2+1)
		select {
		case <-time.After(d):
		case <-x.ctx.Done():
			return nil, nil, nil, x.ctx.Err()
		}
	}
}

// keepLease renews the lease every third of its TTL until released.
func (x *execution) keepLease(l graft.Lease, ttl time.Duration) (context.Context, *graft.Lease, func(), error) {
	ctx, cancel := context.WithCancelCause(x.ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			ok, err := x.e.cfg.Locker.Renew(context.WithoutCancel(ctx), l, ttl)
			if err == nil && !ok {
				x.e.stats.LeasesLost.Add(1)
				cancel(errLeaseLost)
				return
			}
		}
	}()
	release := func() {
		close(stop)
		<-done
		cancel(nil)
		if err := x.e.cfg.Locker.Release(context.WithoutCancel(x.ctx), l); err != nil {
			x.e.log.Warn("locker: release failed; the lease expires by itself", "err", err)
		}
	}
	return ctx, &l, release, nil
}
