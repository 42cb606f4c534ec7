// Package memgraph is an in-memory sink and dead-letter store for tests: a
// semantics.Graph behind the graft.Sink role, fast and exact, for engine and
// source tests that need a sink but are not about one. Graphs are checked
// against internal/model, not against this.
package memgraph

import (
	"context"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// New returns an empty in-memory graph (semantics.New).
func New() *semantics.Graph { return semantics.New() }

// Sink adapts a graph to graft.Sink.
type Sink struct {
	*semantics.Graph
	Lim graft.SinkLimits
}

var _ graft.Sink = (*Sink)(nil)
var _ graft.DeadLetters = (*Letters)(nil)

// Apply implements graft.Sink, with fencing (graft.Batch.Fence).
func (s *Sink) Apply(_ context.Context, b *graft.Batch) error {
	if b.Fence == 0 {
		return s.ApplyBatch(b.Writes)
	}
	return s.ApplyFenced(b.Writes, b.FenceKeys(), b.Fence)
}

// Limits implements graft.Sink.
func (s *Sink) Limits() graft.SinkLimits { return s.Lim }

// Ping implements graft.Sink.
func (s *Sink) Ping(context.Context) error { return nil }

// Close implements graft.Sink.
func (s *Sink) Close() error { return nil }
