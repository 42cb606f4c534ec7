package postgres

import (
	"context"
	"testing"

	"github.com/graftdb/graft/internal/conformance"
)

// open returns a store on a fresh database.
func open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s := open(t)
		return conformance.Target{Sink: s, Reader: s, NoNUL: true}
	})
}
