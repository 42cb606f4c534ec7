package semantics_test

import (
	"testing"

	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/semantics"
)

// The model itself must pass the conformance suite: it is what the engine
// tests compare real sinks with.
func TestConformance(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		g := semantics.New()
		return conformance.Target{Sink: &memgraph.Sink{Graph: g}, Reader: g}
	})
}
