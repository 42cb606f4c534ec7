package engine_test

import (
	"context"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/memgraph"
)

// halfSink applies a batch and then reports write "w2" as failed
// permanently: the batch's effect is in the store although it "failed" (a
// sink that cannot tell, an answer lost on the way).
type halfSink struct{ *memgraph.Sink }

func (s *halfSink) Apply(ctx context.Context, b *graft.Batch) error {
	if err := s.Sink.Apply(ctx, b); err != nil {
		return err
	}
	for i, w := range b.Writes {
		if w.ID == "w2" {
			return graft.Errorf(graft.Permanent, i, "refused after the fact")
		}
	}
	return nil
}

// The write cache forgets what a failed batch touched: w2's failure leaves
// the cache's "v.p = 1" in doubt, so w3's p = 1 must be applied, not
// eliminated against it (invariant 6).
func TestCacheForgetsAFailedBatch(t *testing.T) {
	lines := []string{
		`{"key":"k","id":"w1","ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}}]}`,
		`{"key":"k","id":"w2","ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":2}}]}`,
		`{"key":"k","id":"w3","ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}}]}`,
	}
	g := memgraph.New()
	src := newSliceSource(t, lines, 1, nil)
	src.chunk = 1 // one write per batch
	cfg := engine.Default()
	cfg.MaxBatchWrites = 1
	e, err := engine.New(&halfSink{&memgraph.Sink{Graph: g, Lim: testLimits}}, &memDLQ{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	v, err := g.Vertex(context.Background(), "v")
	if err != nil || v.Props["p"] != graft.Int(1) {
		t.Fatalf("v = %+v (%v): want p = 1, written by w3 after w2's failed batch", v, err)
	}
}
