package engine

import (
	"context"
	"log/slog"
	"sync"

	"github.com/graftdb/graft"
)

// acker acknowledges positions to the source off the scheduler's goroutine,
// keeping only the newest position per partition.
type acker struct {
	src    graft.Source
	log    *slog.Logger
	mu     sync.Mutex
	flushM sync.Mutex // one flush at a time: a drain's flush waits for one in progress
	latest map[string]graft.Position
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context
}

func newAcker(ctx context.Context, src graft.Source, log *slog.Logger) *acker {
	a := &acker{src: src, log: log, latest: map[string]graft.Position{}, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), ctx: ctx}
	go a.loop()
	return a
}

func (a *acker) ack(pos graft.Position) {
	a.mu.Lock()
	a.latest[pos.Partition] = pos
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *acker) loop() {
	defer close(a.done)
	for {
		select {
		case <-a.wake:
			a.flush()
		case <-a.stop:
			a.flush()
			return
		}
	}
}

func (a *acker) flush() {
	a.flushM.Lock()
	defer a.flushM.Unlock()
	a.mu.Lock()
	batch := a.latest
	a.latest = map[string]graft.Position{}
	a.mu.Unlock()
	for _, pos := range batch {
		if err := a.src.Ack(a.ctx, pos); err != nil {
			// Not fatal: the source replays from its last acknowledged
			// position, and replay is idempotent.
			a.log.Warn("acknowledge failed", "partition", pos.Partition, "offset", pos.Offset, "err", err)
		}
	}
}

// close flushes the last positions and stops.
func (a *acker) close() {
	close(a.stop)
	<-a.done
}
