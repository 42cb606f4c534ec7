//go:build gremlin_integration

// Against a real Gremlin Server, which cannot be installed from this
// machine's package registries: the test is built only with
// -tags gremlin_integration, and then requires GREMLIN_URL (it fails without
// it — it never skips).

package gremlin

import (
	"context"
	"os"
	"testing"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
)

// Against the real server GREMLIN_URL names (README, Development): every
// op kind applied twice, and the graph read back with plain traversals and
// the Reader.
func TestRealServer(t *testing.T) {
	url := os.Getenv("GREMLIN_URL")
	if url == "" {
		t.Fatal("GREMLIN_URL is not set (e.g. gremlin+ws://localhost:8182/gremlin?dialect=tinkergraph)")
	}
	s := open(t, url)
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	hostile := `x'); g.V().drop(); //`
	b := writes(t,
		`{"ops":[{"op":"upsertVertex","id":"gt:org","label":"organization","props":{"name":"x'); g.V().drop(); //","n":9223372036854775807}},{"op":"upsertVertex","id":"gt:dev","label":"device"},{"op":"upsertVertex","id":"gt:sw1","label":"software"},{"op":"upsertVertex","id":"gt:sw2","label":"software"}]}`,
		`{"ops":[{"op":"upsertEdge","label":"owns","from":"gt:org","to":"gt:dev","props":{"since":2024}},{"op":"replaceEdges","from":"gt:dev","label":"installed","to":["gt:sw1","gt:sw2"]}]}`,
		`{"ops":[{"op":"replaceEdges","from":"gt:dev","label":"installed","to":["gt:sw2"]},{"op":"dropProps","element":"edge","label":"owns","from":"gt:org","to":"gt:dev","keys":["since"]},{"op":"deleteVertex","id":"gt:sw1"}]}`)
	for range 2 { // idempotent
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	g := gremlingo.Traversal_().WithRemote(s.conn)
	name, err := g.V("gt:org").Values("name").Next()
	if err != nil || name.GetString() != hostile {
		t.Fatalf("name: %v %v", name, err)
	}
	n, err := g.V("gt:dev").Out("installed").Id().ToList()
	if err != nil || len(n) != 1 || n[0].GetString() != "gt:sw2" {
		t.Fatalf("installed: %v %v", n, err)
	}
	if c, err := g.V("gt:sw1").Count().Next(); err != nil || c.GetInterface().(int64) != 0 {
		t.Fatalf("deleted vertex: %v %v", c, err)
	}
	v, err := s.Vertex(ctx, "gt:org")
	if err != nil || v.Label != "organization" || v.Props["name"] != graft.String(hostile) || v.Props["n"] != graft.Int(9223372036854775807) {
		t.Fatalf("Reader.Vertex: %+v %v", v, err)
	}
	es, err := s.Edges(ctx, "gt:org", graft.Out, "owns")
	if err != nil || len(es) != 1 || es[0].ID != "" || es[0].To != "gt:dev" || len(es[0].Props) != 0 {
		t.Fatalf("Reader.Edges: %+v %v", es, err)
	}
	missing := writes(t, `{"ops":[{"op":"upsertEdge","label":"owns","from":"gt:org","to":"gt:nobody"}]}`)
	if err := s.Apply(ctx, missing); graft.ClassOf(err) != graft.MissingEndpoint {
		t.Fatalf("edge to a missing vertex: %v (class %v), want missing endpoint", err, graft.ClassOf(err))
	}
}
