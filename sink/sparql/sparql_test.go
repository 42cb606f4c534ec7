package sparql

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/fuseki"
	"github.com/graftdb/graft/internal/virtuosotest"
)

var (
	server  *virtuosotest.Server
	graphNo atomic.Int64

	fusekiMu     sync.Mutex
	fusekiServer *fuseki.Server
)

// TestMain starts one Virtuoso for the package; every conformance target
// gets its own named graph. Its SELECTs return at most maxRows rows, far
// below Virtuoso's default (10,000): every read of the sink must page
// through the cap, or fail, never return part of a result.
const maxRows = 300

func TestMain(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	if fusekiServer != nil {
		fusekiServer.Stop()
	}
	if benchVirtuoso != nil {
		benchVirtuoso.Stop()
	}
	os.Exit(code)
}

func virtuoso(t *testing.T) *virtuosotest.Server { return shared(t) }

func virtuosoB(b *testing.B) *virtuosotest.Server { return shared(b) }

func shared(t testing.TB) *virtuosotest.Server {
	t.Helper()
	if server == nil {
		server = virtuosotest.StartCapped(&keepAlive{TB: t}, maxRows)
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

// openGraph opens the sink on a fresh named graph of the endpoint.
func openGraph(t testing.TB, endpoint string) *Store {
	t.Helper()
	cfg, err := ParseURL(fmt.Sprintf("sparql+%s?graph=urn:graft:test:%d", endpoint, graphNo.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fusekiEndpoint is the package's Apache Jena Fuseki, started by the first
// test that needs it.
func fusekiEndpoint(t testing.TB) string {
	t.Helper()
	fusekiMu.Lock()
	defer fusekiMu.Unlock()
	if fusekiServer == nil {
		fusekiServer = fuseki.Start(t)
	}
	return fusekiServer.Endpoint
}

// The conformance suite on Apache Jena Fuseki (in memory, no row cap).
func TestConformanceFuseki(t *testing.T) {
	endpoint := fusekiEndpoint(t)
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s := openGraph(t, endpoint)
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return conformance.Target{Sink: s, Reader: s}
	})
}

func TestConformance(t *testing.T) {
	srv := virtuoso(t)
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s := openGraph(t, srv.Endpoint)
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		return conformance.Target{Sink: s, Reader: s}
	})
}
