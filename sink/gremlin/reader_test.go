package gremlin

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/gremlintest"
)

// The Reader against the in-test server: the projection traversals go to
// the reader endpoint, and the driver's decoded answers become vertices and
// edges — vertex properties from valueMap's lists, the explicit-id marker
// hidden, a natural edge's server-made id dropped.
func TestReader(t *testing.T) {
	writer := gremlintest.Start(t, gremlintest.OK)
	answers := [][]any{
		{map[string]any{"id": "dev:1", "label": "device", "props": map[string]any{"serial": []any{"SN1"}, "n": []any{int64(9223372036854775807)}, "f": []any{1.5}, "ok": []any{true}}}},
		{},
		{
			map[string]any{"id": "8a1c-uuid-made-by-the-server", "label": "owns", "from": "org:1", "to": "dev:1", "props": map[string]any{"since": int32(2024)}},
			map[string]any{"id": "e1", "label": "owns", "from": "org:1", "to": "dev:1", "props": map[string]any{ExplicitIDProperty: true}},
		},
		{map[string]any{"id": "org:1", "label": "organization", "props": map[string]any{}}},
		{map[string]any{"id": "e1", "label": "owns", "from": "org:1", "to": "dev:1", "props": map[string]any{ExplicitIDProperty: true}}},
	}
	reader := gremlintest.Start(t, func(n int, _ []byte) gremlintest.Reply {
		if n-1 < len(answers) {
			return gremlintest.Reply{Status: 200, Result: answers[n-1]}
		}
		return gremlintest.Reply{Status: 200}
	})
	s := open(t, writer.SinkURL("?reader="+reader.SinkURL("")))
	ctx := context.Background()
	v, err := s.Vertex(ctx, "dev:1")
	if err != nil {
		t.Fatal(err)
	}
	want := graft.Props{"serial": graft.String("SN1"), "n": graft.Int(9223372036854775807), "f": graft.Float(1.5), "ok": graft.Bool(true)}
	if v.ID != "dev:1" || v.Label != "device" || !v.Props.Equal(want) {
		t.Fatalf("vertex: %+v", v)
	}
	if req := reader.Request(0); !bytes.Contains(req, []byte("project")) || !bytes.Contains(req, []byte("valueMap")) || !bytes.Contains(req, []byte("dev:1")) {
		t.Fatal("the vertex read is not the projection traversal")
	}
	if _, err := s.Vertex(ctx, "nobody"); !errors.Is(err, graft.ErrNotFound) {
		t.Fatalf("absent vertex: %v", err)
	}
	es, err := s.Edges(ctx, "org:1", graft.Out, "owns")
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].ID != "" || es[0].Props["since"] != graft.Int(2024) || es[1].ID != "e1" || len(es[1].Props) != 0 {
		t.Fatalf("edges: %+v", es)
	}
	var vs []graft.Vertex
	var edges []graft.Edge
	if err := s.Export(ctx, func(v *graft.Vertex) error { vs = append(vs, *v); return nil }, func(e *graft.Edge) error { edges = append(edges, *e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].ID != "org:1" || len(edges) != 1 || edges[0].ID != "e1" {
		t.Fatalf("export: %+v %+v", vs, edges)
	}
	if err := s.Apply(ctx, writes(t, `{"ops":[{"op":"upsertEdge","id":"e2","label":"owns","from":"org:1","to":"dev:1"}]}`)); err != nil {
		t.Fatal(err)
	}
	if writer.Count() != 1 || reader.Count() != 5 {
		t.Fatalf("writer got %d requests, reader %d: reads must go to the reader, writes to the writer", writer.Count(), reader.Count())
	}
	if !bytes.Contains(writer.Request(0), []byte(ExplicitIDProperty)) {
		t.Fatal("an edge with an explicit id must be marked")
	}
}
