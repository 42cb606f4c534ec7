package workload

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/model"
)

// Workload is a random stream of writes over a few keys and a few hot
// vertices, and the graph that applying it in order must produce: the model,
// computed by applying each write to internal/model one at a time, which
// shares no code with the engine or any sink. Writes the model rejects must be dead-lettered.
//
// Besides stable vertices (never deleted) and ephemeral ones (deleted and
// recreated, always by writes that upsert them with their edges), mortal
// vertices are created once, linked to by writes of any key that do not
// upsert them, and deleted by a write of any key, for good; a batch holding
// an edge to one and its deletion, committed in doubt, must replay to the
// same graph. No write links to a mortal after its deletion:
// such a write parks, the writes of its key behind it are set aside, and
// later writes of other keys go first (invariant 12), which an
// arrival-order model cannot follow; the engine's park_test.go covers those.
type Workload struct {
	Lines  []string               // the writes, in the wire format, in order
	Model  *model.Graph           // the graph applying them one at a time gives
	Poison map[string]graft.Class // write ids the model rejected, and why
}

// Random generates n writes over keys keys and stable hot vertices (a Zipf
// law picks them), from seed.
func Random(t testing.TB, seed uint64, n, keys, stable int) *Workload {
	t.Helper()
	return generate(t, seed, n, keys, stable, false)
}

// RandomTypedKeys is Random with one value type per property key (p0 an
// integer, p1 a float, p2 a boolean, p3 a string), for stores whose keys
// are typed by their first value (JanusGraph).
func RandomTypedKeys(t testing.TB, seed uint64, n, keys, stable int) *Workload {
	t.Helper()
	return generate(t, seed, n, keys, stable, true)
}

func generate(t testing.TB, seed uint64, n, keys, stable int, typed bool) *Workload {
	rng := rand.New(rand.NewPCG(seed, 7))
	zipf := rand.NewZipf(rng, 1.3, 1, uint64(stable-1))
	wl := &Workload{Model: model.New(), Poison: map[string]graft.Class{}}
	sv := func(i uint64) string { return fmt.Sprintf("s%d", i) }
	mv := func(i int) string { return fmt.Sprintf("m%d", i) }
	mortals := max(stable/2, 1)
	// About half of them deleted by the end; a mortal op is one op in ten,
	// two ops a write.
	pDelete := min(float64(mortals)/(0.1*2*float64(n)), 0.5)
	label := func(i uint64) string { return []string{"software", "device", "org"}[i%3] }
	prop := func(kind int) graft.Value {
		switch kind {
		case 0:
			return graft.Int(rng.Int64() - rng.Int64())
		case 1:
			return graft.Float(rng.NormFloat64())
		case 2:
			return graft.Bool(rng.IntN(2) == 0)
		}
		return graft.String(fmt.Sprintf("v%d\"'\n", rng.IntN(100)))
	}
	props := func() graft.Props {
		p := graft.Props{}
		for i := rng.IntN(3); i > 0; i-- {
			key := rng.IntN(4)
			kind := key
			if !typed {
				kind = rng.IntN(4)
			}
			p[fmt.Sprintf("p%d", key)] = prop(kind)
		}
		return p
	}
	emit := func(w *graft.Write) {
		b, err := json.Marshal(wireOf(w))
		if err != nil {
			t.Fatal(err)
		}
		wl.Lines = append(wl.Lines, string(b))
		if err := wl.Model.ApplyWrite(w); err != nil {
			wl.Poison[w.ID] = graft.ClassOf(err)
		}
	}
	seq := 0
	next := func(key string) *graft.Write {
		seq++
		return &graft.Write{ID: fmt.Sprintf("w%d", seq), Key: key}
	}
	// Every stable vertex first, so that edges to them never miss an endpoint.
	for i := 0; i < stable; i++ {
		w := next(fmt.Sprintf("k%d", i%keys))
		w.Ops = []graft.Op{{Kind: graft.UpsertVertex, ID: sv(uint64(i)), Label: label(uint64(i)), Props: props()}}
		emit(w)
	}
	var alive []int // mortals not deleted yet, as far as the writes so far go
	for i := 0; i < mortals; i++ {
		alive = append(alive, i)
		w := next(fmt.Sprintf("k%d", rng.IntN(keys)))
		w.Ops = []graft.Op{{Kind: graft.UpsertVertex, ID: mv(i), Label: "mortal", Props: props()}}
		emit(w)
	}
	ephemeral := 0
	for len(wl.Lines) < n {
		key := fmt.Sprintf("k%d", rng.IntN(keys))
		w := next(key)
		a, b := zipf.Uint64(), zipf.Uint64()
		for j := 1 + rng.IntN(3); j > 0; j-- {
			if rng.IntN(100) < 10 && len(alive) > 0 {
				i := rng.IntN(len(alive))
				m := mv(alive[i])
				switch r := rng.Float64(); {
				case r < pDelete:
					w.Ops = append(w.Ops, graft.Op{Kind: graft.DeleteVertex, ID: m})
					alive = append(alive[:i], alive[i+1:]...)
				case r < 0.6:
					w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertEdge, Label: "links", From: sv(a), To: m, Props: props()})
				default:
					w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertEdge, Label: "linkedBy", From: m, To: sv(b)})
				}
				continue
			}
			switch r := rng.IntN(100); {
			case r < 30:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertVertex, ID: sv(a), Label: label(a), Props: props()})
			case r < 50:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertEdge, Label: "e" + fmt.Sprint(rng.IntN(2)), From: sv(a), To: sv(b), Props: props()})
			case r < 62:
				var ts []string
				for k := rng.IntN(4); k > 0; k-- {
					ts = append(ts, sv(zipf.Uint64()))
				}
				ts = dedupe(ts)
				w.Ops = append(w.Ops, graft.Op{Kind: graft.ReplaceEdges, Label: "e1", From: sv(a), Targets: ts})
			case r < 68:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DeleteEdge, Label: "e0", From: sv(a), To: sv(b)})
			case r < 73:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DropVertexProps, ID: sv(a), Keys: []string{"p0", "p1"}})
			case r < 76:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DropEdgeProps, Label: "e0", From: sv(a), To: sv(b), Keys: []string{"p2"}})
			case r < 88:
				ephemeral++
				e := fmt.Sprintf("x%d", rng.IntN(ephemeral))
				w.Ops = append(w.Ops,
					graft.Op{Kind: graft.UpsertVertex, ID: e, Label: "ephemeral", Props: props()},
					graft.Op{Kind: graft.UpsertEdge, Label: "uses", From: e, To: sv(a)},
					graft.Op{Kind: graft.UpsertEdge, Label: "usedBy", From: sv(b), To: e})
			case r < 96:
				w.Ops = append(w.Ops, graft.Op{Kind: graft.DeleteVertex, ID: fmt.Sprintf("x%d", rng.IntN(ephemeral+1))})
			default:
				// Poison: a stable vertex with the wrong label.
				w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertVertex, ID: sv(a), Label: label(a + 1)})
			}
		}
		emit(w)
	}
	return wl
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// wireOf renders a write in the wire format.
func wireOf(w *graft.Write) map[string]any {
	ops := make([]map[string]any, len(w.Ops))
	for i, op := range w.Ops {
		m := map[string]any{"op": op.Kind.String()}
		set := func(k, v string) {
			if v != "" {
				m[k] = v
			}
		}
		set("id", op.ID)
		set("label", op.Label)
		set("from", op.From)
		switch op.Kind {
		case graft.ReplaceEdges:
			m["to"] = op.Targets
		default:
			set("to", op.To)
		}
		if op.Props != nil {
			m["props"] = op.Props
		}
		if op.Keys != nil {
			m["keys"] = op.Keys
		}
		switch op.Kind {
		case graft.DropVertexProps:
			m["element"] = "vertex"
		case graft.DropEdgeProps:
			m["element"] = "edge"
		}
		ops[i] = m
	}
	return map[string]any{"key": w.Key, "id": w.ID, "ops": ops}
}

// CheckLetters compares the dead letters with the writes the model
// rejected: each rejected write is dead-lettered with the class the model
// gives (a poison write for its label), and nothing else is.
func (wl *Workload) CheckLetters(t testing.TB, letters []*graft.Letter) {
	t.Helper()
	got := map[string]*graft.Letter{}
	for _, l := range letters {
		got[l.WriteID] = l
	}
	for id, class := range wl.Poison {
		l, ok := got[id]
		if !ok {
			t.Errorf("write %s: rejected by the model (%s) but not dead-lettered", id, class)
			continue
		}
		switch {
		case class == graft.Permanent && (l.Class != class.String() || !strings.Contains(l.Error, "label")):
			t.Errorf("write %s: dead letter %s %q, want a permanent label error", id, l.Class, l.Error)
		case class == graft.MissingEndpoint && l.Class != class.String():
			t.Errorf("write %s: dead letter %s %q, want a missing endpoint", id, l.Class, l.Error)
		case class != graft.Permanent && class != graft.MissingEndpoint:
			t.Errorf("write %s: the model rejects it as %s, which the workload never means to write", id, class)
		}
	}
	for id, l := range got {
		if _, ok := wl.Poison[id]; !ok {
			t.Errorf("write %s: dead-lettered (%s: %s) but the model applies it", id, l.Class, l.Error)
		}
	}
}
