package semantics

import (
	"errors"

	"github.com/graftdb/graft"
)

// ApplyAttributed applies the writes of a batch in order, each atomically,
// as a sink does in memory before it writes anything: the first failing
// write's error is returned with its index in the batch. It also returns
// the vertices that existed before (existed) and were deleted by the batch,
// whose remaining edges the sink must delete in the store.
func (g *Graph) ApplyAttributed(ws []*graft.Write, existed func(id string) bool) (deleted map[string]bool, err error) {
	deleted = map[string]bool{}
	for i, w := range ws {
		if err := g.ApplyWrite(w); err != nil {
			var ge *graft.Error
			if errors.As(err, &ge) {
				return nil, &graft.Error{Class: ge.Class, Index: i, Err: ge.Err}
			}
			return nil, &graft.Error{Class: graft.Permanent, Index: i, Err: err}
		}
		for j := range w.Ops {
			if op := &w.Ops[j]; op.Kind == graft.DeleteVertex && existed(op.ID) {
				deleted[op.ID] = true
			}
		}
	}
	return deleted, nil
}

// Touched is what a batch touches, for a sink that loads it before applying
// the batch in memory (ApplyAttributed) and writes the difference: every
// vertex its ops name (edge endpoints and replaceEdges targets included),
// the edges its edge ops address (natural ones by label, from, to; others
// by explicit id), and the (from, label) groups its replaceEdges rewrite.
type Touched struct {
	Vertices map[string]bool
	Natural  map[[3]string]bool // {from, label, to}
	IDs      map[string]bool
	Groups   map[[2]string]bool // {from, label}
}

// TouchedBy collects what the writes touch.
func TouchedBy(ws []*graft.Write) Touched {
	t := Touched{Vertices: map[string]bool{}, Natural: map[[3]string]bool{}, IDs: map[string]bool{}, Groups: map[[2]string]bool{}}
	for _, w := range ws {
		for i := range w.Ops {
			op := &w.Ops[i]
			op.Vertices(func(id string) { t.Vertices[id] = true })
			switch {
			case op.Kind == graft.ReplaceEdges:
				t.Groups[[2]string{op.From, op.Label}] = true
			case op.Kind.IsEdge() && op.ID != "":
				t.IDs[op.ID] = true
			case op.Kind.IsEdge():
				t.Natural[[3]string{op.From, op.Label, op.To}] = true
			}
		}
	}
	return t
}
