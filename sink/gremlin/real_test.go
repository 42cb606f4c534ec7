package gremlin

// Against a real Apache TinkerPop Gremlin Server (internal/gremlinserver):
// one JVM for the package, started by the first test that needs it.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/gremlinserver"
)

var (
	realMu      sync.Mutex
	realServer  *gremlinserver.Server
	janusServer *gremlinserver.Server
	// graphMu: the server's graphs are shared; a test that needs one empty
	// holds it (the conformance cases run one at a time on it).
	graphMu sync.Mutex
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []*gremlinserver.Server{realServer, janusServer} {
		if s != nil {
			s.Stop()
		}
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

// janusGraph returns the package's JanusGraph server, started by the first
// test that needs it.
func janusGraph(t testing.TB) *gremlinserver.Server {
	t.Helper()
	realMu.Lock()
	defer realMu.Unlock()
	if janusServer == nil {
		janusServer = gremlinserver.StartJanusGraph(t)
	}
	return janusServer
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
		return conformance.Target{Sink: s, Reader: s, NoRollback: true, NoFencing: noFencing, NoVersions: noVersions}
	})
}

// The same on TinkerTransactionGraph: every request a transaction.
func TestConformanceTinkerTransactionGraph(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s := emptyGraph(t, "gtx")
		return conformance.Target{Sink: s, Reader: s, NoFencing: noFencing, NoVersions: noVersions}
	})
}

// The same on JanusGraph 1.1 (in-memory backend), janusgraph dialect. Its
// labels and property keys share one namespace and refuse " { }: the
// suite's names keep clear of both (docs/gremlin.md).
func TestConformanceJanusGraph(t *testing.T) {
	srv := janusGraph(t)
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		graphMu.Lock()
		t.Cleanup(graphMu.Unlock)
		s := open(t, srv.URL("g"))
		if err := s.Reset(context.Background()); err != nil {
			t.Fatalf("emptying the graph: %v", err)
		}
		return conformance.Target{Sink: s, Reader: s, NoFencing: noFencing, NoVersions: noVersions, SharedNames: true, ReservedChars: `"{}`, TypedKeys: true}
	})
}

const noVersions = "the Gremlin sink does not guard on versions yet (docs/DESIGN.md, \"Versions\")"

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
		`{"ops":[{"op":"upsertVertex","id":"two","label":"y"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"s0","label":"x"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"s0","label":"x"},{"op":"upsertVertex","id":"s0","label":"y"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"s0","label":"x"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"r","label":"x"},{"op":"deleteVertex","id":"r"},{"op":"upsertVertex","id":"r","label":"y"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"r","label":"x"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"same","label":"x"}]}`,
		`{"ops":[{"op":"upsertVertex","id":"same","label":"x"}]}`)
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
		{msg(markerVertexTaken, "s0"), 8},    // among writes that agree, one contradicts itself (found by the real server)
		{msg(markerVertexTaken, "r"), -1},    // deleted between its two labels: not a contradiction
		{msg(markerVertexTaken, "same"), 12}, // all agree, the store holds another label: the first
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

// A server error keeps its message and exception class, not the Java
// stack trace the server attaches (hundreds of lines in every log line
// and dead letter).
func TestServerErrorWithoutStackTrace(t *testing.T) {
	s := emptyGraph(t, "gtx")
	err := s.Apply(context.Background(), writes(t, `{"ops":[{"op":"upsertEdge","label":"e","from":"nowhere","to":"nobody"}]}`))
	if graft.ClassOf(err) != graft.MissingEndpoint {
		t.Fatalf("got %v (%s), want a missing endpoint", err, graft.ClassOf(err))
	}
	msg := err.Error()
	for _, want := range []string{markerNoEndpoint + "nowhere", "exceptions:["} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "stackTrace") || strings.Contains(msg, "\tat org.apache") || len(msg) > 600 {
		t.Errorf("the error carries the stack trace (%d bytes): %.300s…", len(msg), msg)
	}
}

// Export pages through a graph of 120,000 elements as the server streams
// it: every element arrives once, with its properties, and the heap never
// holds the graph. The graph is loaded with bulk traversals of the test's
// own (inject(maps).mergeV()), not with the sink.
func TestExportOf120000ElementsInBoundedMemory(t *testing.T) {
	s := emptyGraph(t, "g")
	const n = 60_000 // vertices, and as many edges (a ring)
	g := gremlingo.Traversal_().WithRemote(s.conn)
	pad := strings.Repeat("x", 200) // a property of some size: the graph is about 30 MB as Go values
	for off := 0; off < n; off += 1000 {
		var vs []any
		for i := off; i < off+1000; i++ {
			vs = append(vs, map[any]any{gremlingo.T.Id: fmt.Sprintf("v%d", i), gremlingo.T.Label: "v", "n": int64(i), "pad": pad})
		}
		if _, err := g.Inject(vs...).MergeV().Count().ToList(); err != nil {
			t.Fatalf("loading vertices: %v", err)
		}
		if off+1000 == n { // every endpoint exists now
			for o := 0; o < n; o += 1000 {
				var es []any
				for i := o; i < o+1000; i++ {
					es = append(es, map[any]any{gremlingo.T.Label: "next", gremlingo.Direction.From: fmt.Sprintf("v%d", i), gremlingo.Direction.To: fmt.Sprintf("v%d", (i+1)%n), "n": int64(i)})
				}
				if _, err := g.Inject(es...).MergeE().Count().ToList(); err != nil {
					t.Fatalf("loading edges: %v", err)
				}
			}
		}
	}
	seenV := make([]bool, n)
	seenE := make([]bool, n)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	sample := func(i int) {
		if i%2000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	count := 0
	err := s.Export(context.Background(), func(v *graft.Vertex) error {
		i, err := strconv.Atoi(strings.TrimPrefix(v.ID, "v"))
		if err != nil || i >= n || seenV[i] || v.Props["n"] != graft.Int(int64(i)) || v.Props["pad"] != graft.String(pad) {
			return fmt.Errorf("vertex %+v: unexpected or repeated", v)
		}
		seenV[i] = true
		count++
		sample(count)
		return nil
	}, func(e *graft.Edge) error {
		i, err := strconv.Atoi(strings.TrimPrefix(e.From, "v"))
		if err != nil || i >= n || seenE[i] || e.To != fmt.Sprintf("v%d", (i+1)%n) || e.Props["n"] != graft.Int(int64(i)) {
			return fmt.Errorf("edge %+v: unexpected or repeated", e)
		}
		seenE[i] = true
		count++
		sample(count)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != 2*n {
		t.Fatalf("exported %d elements, want %d", count, 2*n)
	}
	growth := int64(peak) - int64(base)
	t.Logf("heap grew by at most %.1f MiB while exporting %d elements", float64(growth)/(1<<20), count)
	// Held whole, the vertices alone (60,000 maps with a 200-byte string)
	// take over 30 MiB; streamed, a few frames of 64 results are in memory.
	if growth > 8<<20 {
		t.Errorf("heap grew by %.1f MiB during the export: it holds the graph instead of streaming it", float64(growth)/(1<<20))
	}
}
