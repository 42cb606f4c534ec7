package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/sink/sqlite"
)

func TestConformance(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "graph.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return conformance.Target{Sink: s, Reader: s}
	})
}
