package sparql

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/virtuosotest"
)

var (
	server  *virtuosotest.Server
	graphNo atomic.Int64
)

// TestMain starts one Virtuoso for the package; every conformance target
// gets its own named graph.
func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

func virtuoso(t *testing.T) *virtuosotest.Server { return shared(t) }

func virtuosoB(b *testing.B) *virtuosotest.Server { return shared(b) }

func shared(t testing.TB) *virtuosotest.Server {
	t.Helper()
	if server == nil {
		server = virtuosotest.Start(&keepAlive{TB: t})
	}
	return server
}

// keepAlive is a testing.TB whose cleanups never run: the server lives as
// long as the test binary (TestMain stops it).
type keepAlive struct{ testing.TB }

func (k *keepAlive) Cleanup(func()) {}
func (k *keepAlive) TempDir() string {
	d, err := os.MkdirTemp("", "graft-virtuoso-")
	if err != nil {
		k.TB.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) {
	srv := virtuoso(t)
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		cfg, err := ParseURL(fmt.Sprintf("sparql+%s?graph=urn:graft:test:%d", srv.Endpoint, graphNo.Add(1)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return conformance.Target{Sink: s, Reader: s}
	})
}
