package gremlin

// Against a real Apache TinkerPop Gremlin Server (internal/gremlinserver):
// one JVM for the package, started by the first test that needs it.

import (
	"context"
	"os"
	"sync"
	"testing"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/gremlinserver"
)

var (
	realMu     sync.Mutex
	realServer *gremlinserver.Server
	// graphMu: the server's graphs are shared; a test that needs one empty
	// holds it (the conformance cases run one at a time on it).
	graphMu sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	if realServer != nil {
		realServer.Stop()
	}
	os.Exit(code)
}

func gremlinServer(t testing.TB) *gremlinserver.Server {
	t.Helper()
	realMu.Lock()
	defer realMu.Unlock()
	if realServer == nil {
		realServer = gremlinserver.Start(t)
	}
	return realServer
}

// emptyGraph takes the named graph of the real server for the test, empty.
func emptyGraph(t testing.TB, source string) *Store {
	t.Helper()
	srv := gremlinServer(t)
	graphMu.Lock()
	t.Cleanup(graphMu.Unlock)
	s := open(t, srv.URL(source))
	g := gremlingo.Traversal_().WithRemote(s.conn)
	if _, err := g.V().Drop().ToList(); err != nil { // not Iterate: gremlin-go 3.8 adds discard(), which a 3.7 server does not know
		t.Fatalf("emptying %s: %v", source, err)
	}
	return s
}

// The Sink conformance suite on TinkerGraph.
func TestConformanceTinkerGraph(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s := emptyGraph(t, "g")
		return conformance.Target{Sink: s, Reader: s, NoRollback: true, NoFencing: noFencing}
	})
}

// The same on TinkerTransactionGraph: every request a transaction.
func TestConformanceTinkerTransactionGraph(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s := emptyGraph(t, "gtx")
		return conformance.Target{Sink: s, Reader: s, NoFencing: noFencing}
	})
}

const noFencing = "the Gremlin sink does not check fencing tokens yet (docs/gremlin.md, \"Locker\")"

func TestRealServerPing(t *testing.T) {
	s := open(t, gremlinServer(t).URL("g"))
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// attribute names the write a server error is about, or -1 when the
// message does not point at exactly one.
func TestAttribute(t *testing.T) {
	b := writes(t,
		`{"ops":[{"op":"upsertVertex","id":"a","label":"v"}]}`,
		`{"ops":[{"op":"upsertEdge","label":"e","from":"a","to":"gone"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"gone","label":"v"},{"op":"upsertEdge","label":"e","from":"gone","to":"a"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"d","label":"x"},{"op":"upsertVertex","id":"d","label":"y"}]}`,
		`{"ops":[{"op":"upsertEdge","id":"e1","label":"e","from":"a","to":"d"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"two","label":"x"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"two","label":"y"}]}`)
	msg := func(marker, id string) string {
		return "E0502: error in read loop, error message '{code:244 message:" + marker + id + " attributes:map[exceptions:[…]]}'"
	}
	for _, c := range []struct {
		msg  string
		want int
	}{
		{msg(markerNoEndpoint, "gone"), 1},       // the first need before the write that creates it
		{msg(markerNoEndpoint, "elsewhere"), -1}, // no write needs it
		{msg(markerVertexTaken, "d"), 3},         // two labels, one write
		{msg(markerVertexTaken, "two"), -1},      // two writes, two labels: the store decides
		{msg(markerVertexTaken, "e1"), 4},        // Gremlin Server says "Vertex" for an edge id too
		{msg(markerEdgeTaken, "e1"), 4},
		{"fail() Step Triggered … Message > " + markerWrite + "6: edge id …", 6},
		{"fail() … " + markerWrite + "99: …", -1}, // not a write of this batch
		{"E0104: no connection", -1},
	} {
		if got := attribute(b.Writes, c.msg); got != c.want {
			t.Errorf("attribute(%q) = %d, want %d", c.msg, got, c.want)
		}
	}
}

// An endpoint nobody listens on is reported as such, naming the sink.
func TestUnreachableEndpoint(t *testing.T) {
	cfg, err := ParseURL("gremlin+ws://127.0.0.1:1/gremlin")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(cfg)
	if err == nil {
		s.Close()
		t.Fatal("opened a sink on a closed port")
	}
	if want := "cannot reach sink gremlin+ws://127.0.0.1:1/gremlin: connection refused"; err.Error() != want || graft.ClassOf(err) != graft.Reconnect {
		t.Fatalf("got %q (%s), want %q (reconnect)", err, graft.ClassOf(err), want)
	}
}
