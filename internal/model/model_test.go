package model_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/semantics"
)

// Explicit cases, each with the graph it must leave.
func TestOps(t *testing.T) {
	v := func(id, label string, props graft.Props) graft.Op {
		return graft.Op{Kind: graft.UpsertVertex, ID: id, Label: label, Props: props}
	}
	e := func(label, from, to string) graft.Op {
		return graft.Op{Kind: graft.UpsertEdge, Label: label, From: from, To: to}
	}
	g := model.New()
	must := func(ops ...graft.Op) {
		t.Helper()
		if err := g.ApplyWrite(&graft.Write{Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	must(v("a", "x", graft.Props{"n": graft.Int(1), "s": graft.String("keep")}), v("b", "x", nil), v("c", "x", nil), e("l", "a", "b"))
	must(v("a", "x", graft.Props{"n": graft.Int(2)}), graft.Op{Kind: graft.ReplaceEdges, Label: "l", From: "a", Targets: []string{"c"}})
	// A failing write leaves nothing: the label conflict comes after a
	// change to b.
	err := g.ApplyWrite(&graft.Write{Ops: []graft.Op{v("b", "x", graft.Props{"z": graft.Bool(true)}), v("a", "other", nil)}})
	if graft.ClassOf(err) != graft.Permanent {
		t.Fatalf("label conflict: %v", err)
	}
	if err := g.ApplyWrite(&graft.Write{Ops: []graft.Op{e("l", "a", "nowhere")}}); graft.ClassOf(err) != graft.MissingEndpoint {
		t.Fatalf("missing endpoint: %v", err)
	}
	must(graft.Op{Kind: graft.DeleteVertex, ID: "c"}, graft.Op{Kind: graft.UpsertEdge, ID: "e1", Label: "m", From: "b", To: "a"})
	vs, es := g.Snapshot()
	want := fmt.Sprint([]graft.Vertex{{ID: "a", Label: "x", Props: graft.Props{"n": graft.Int(2), "s": graft.String("keep")}}, {ID: "b", Label: "x"}},
		[]graft.Edge{{ID: "e1", Label: "m", From: "b", To: "a"}})
	if got := fmt.Sprint(vs, es); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// The model and the production semantics, written apart, agree on random
// writes: the same writes fail, and the graphs stay equal. A disagreement
// is a bug in one of them (or a semantics nobody wrote down).
func TestAgreesWithSemantics(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		m, s := model.New(), semantics.New()
		ids := []string{"a", "b", "c", "d", "e"}
		id := func() string { return ids[rng.IntN(len(ids))] }
		label := func() string { return []string{"x", "y"}[rng.IntN(2)] }
		for i := range 400 {
			var w graft.Write
			for range 1 + rng.IntN(4) {
				var op graft.Op
				switch rng.IntN(9) {
				case 0, 1, 2:
					op = graft.Op{Kind: graft.UpsertVertex, ID: id(), Label: label(), Props: graft.Props{"p" + id(): graft.Int(int64(rng.IntN(3)))}}
				case 3:
					op = graft.Op{Kind: graft.DeleteVertex, ID: id()}
				case 4:
					op = graft.Op{Kind: graft.DropVertexProps, ID: id(), Keys: []string{"p" + id()}}
				case 5:
					op = graft.Op{Kind: graft.UpsertEdge, Label: label(), From: id(), To: id(), Props: graft.Props{"q": graft.Int(int64(rng.IntN(3)))}}
					if rng.IntN(3) == 0 {
						op.ID = "e" + id()
					}
				case 6:
					op = graft.Op{Kind: graft.DeleteEdge, Label: label(), From: id(), To: id()}
					if rng.IntN(3) == 0 {
						op.ID = "e" + id()
					}
				case 7:
					op = graft.Op{Kind: graft.DropEdgeProps, Label: label(), From: id(), To: id(), Keys: []string{"q"}}
				case 8:
					op = graft.Op{Kind: graft.ReplaceEdges, Label: label(), From: id(), Targets: []string{id(), id()}[:rng.IntN(3)]}
				}
				w.Ops = append(w.Ops, op)
			}
			em, es := m.ApplyWrite(&w), s.ApplyWrite(&w)
			if graft.ClassOf(em) != graft.ClassOf(es) || (em == nil) != (es == nil) {
				t.Fatalf("seed %d write %d %+v: model says %v, semantics %v", seed, i, w.Ops, em, es)
			}
			mv, me := m.Snapshot()
			sv, se := s.Snapshot()
			if d := model.Diff(mv, me, sv, se); d != "" {
				t.Fatalf("seed %d after write %d %+v:\n%s", seed, i, w.Ops, d)
			}
		}
	}
}
