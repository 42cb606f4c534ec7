package semantics_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/semantics"
)

// versionedWrites is a random stream of versioned writes over a few
// vertices (one label each) and their edges: every op kind, deletes of
// vertices that come back, replaceEdges. A write that links vertices also
// upserts them, so that no write's outcome (missing endpoint) depends on the
// order writes arrive in; only the graph does, and the guards must undo
// that.
func versionedWrites(rng *rand.Rand, n int) []*graft.Write {
	ids := []string{"a", "b", "c", "d"}
	label := map[string]string{"a": "x", "b": "y", "c": "x", "d": "y"}
	pick := func() string { return ids[rng.IntN(len(ids))] }
	props := func() graft.Props {
		p := graft.Props{}
		for i := rng.IntN(3); i > 0; i-- {
			p[fmt.Sprintf("p%d", rng.IntN(3))] = graft.Int(rng.Int64N(5))
		}
		return p
	}
	upsert := func(id string) graft.Op {
		return graft.Op{Kind: graft.UpsertVertex, ID: id, Label: label[id], Props: props()}
	}
	var ws []*graft.Write
	for i := range n {
		w := &graft.Write{ID: fmt.Sprint(i), Key: fmt.Sprint(i), Version: int64(i + 1)}
		for j := 1 + rng.IntN(2); j > 0; j-- {
			a, b := pick(), pick()
			switch rng.IntN(8) {
			case 0, 1:
				w.Ops = append(w.Ops, upsert(a))
			case 2:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DeleteVertex, ID: a})
			case 3:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DropVertexProps, ID: a, Keys: []string{"p0", "p1"}})
			case 4:
				w.Ops = append(w.Ops, upsert(a), upsert(b), graft.Op{Kind: graft.UpsertEdge, Label: "e", From: a, To: b, Props: props()})
			case 5:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DeleteEdge, Label: "e", From: a, To: b})
			case 6:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DropEdgeProps, Label: "e", From: a, To: b, Keys: []string{"p2"}})
			default:
				w.Ops = append(w.Ops, upsert(a))
				var ts []string
				for _, t := range ids {
					if rng.IntN(2) == 0 {
						ts = append(ts, t)
						w.Ops = append(w.Ops, upsert(t))
					}
				}
				w.Ops = append(w.Ops, graft.Op{Kind: graft.ReplaceEdges, Label: "e", From: a, Targets: ts})
			}
		}
		ws = append(ws, w)
	}
	return ws
}

// Versioned writes applied in any order, and any of them again (a replay),
// give the graph the model gives applying each once in version order.
func TestVersionsConvergeInAnyOrder(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 3))
		ws := versionedWrites(rng, 5+rng.IntN(25))
		want := model.New()
		for _, w := range ws {
			want.ApplyWrite(w) //nolint:errcheck // a write the model rejects is rejected in any order
		}
		arrival := slices.Clone(ws)
		rng.Shuffle(len(arrival), func(i, j int) { arrival[i], arrival[j] = arrival[j], arrival[i] })
		for range rng.IntN(len(ws)) { // replays: some writes again, anywhere
			arrival = slices.Insert(arrival, rng.IntN(len(arrival)+1), ws[rng.IntN(len(ws))])
		}
		g := semantics.New()
		for _, w := range arrival {
			g.ApplyWrite(w) //nolint:errcheck // as above
		}
		wv, we := want.Snapshot()
		gv, ge := g.Snapshot()
		if d := model.Diff(wv, we, gv, ge); d != "" {
			var order []int64
			for _, w := range arrival {
				order = append(order, w.Version)
			}
			t.Fatalf("seed %d, arrival %v:\n%s", seed, order, d)
		}
	}
}
