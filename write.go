package graft

import "strconv"

// OpKind names an operation of the wire format.
type OpKind uint8

// The seven operations of the wire format.
const (
	UpsertVertex OpKind = iota + 1
	UpsertEdge
	DeleteVertex
	DeleteEdge
	ReplaceEdges
	DropVertexProps // "dropProps" with "element": "vertex"
	DropEdgeProps   // "dropProps" with "element": "edge"
)

var opNames = [...]string{
	UpsertVertex:    "upsertVertex",
	UpsertEdge:      "upsertEdge",
	DeleteVertex:    "deleteVertex",
	DeleteEdge:      "deleteEdge",
	ReplaceEdges:    "replaceEdges",
	DropVertexProps: "dropProps",
	DropEdgeProps:   "dropProps",
}

func (k OpKind) String() string {
	if int(k) < len(opNames) && opNames[k] != "" {
		return opNames[k]
	}
	return "op(" + strconv.Itoa(int(k)) + ")"
}

// IsEdge reports whether the op addresses one edge (by id or by label, from, to).
func (k OpKind) IsEdge() bool { return k == UpsertEdge || k == DeleteEdge || k == DropEdgeProps }

// Op is one operation of a write. Which fields are set depends on Kind:
//
//	UpsertVertex     ID, Label, Props
//	DeleteVertex     ID
//	DropVertexProps  ID, Keys
//	UpsertEdge       Label, From, To, Props; ID when the edge has an explicit id
//	DeleteEdge       Label, From, To; ID when the edge has an explicit id
//	DropEdgeProps    Label, From, To, Keys; ID when the edge has an explicit id
//	ReplaceEdges     Label, From, Targets
type Op struct {
	Kind    OpKind
	ID      string
	Label   string
	From    string
	To      string
	Targets []string
	Props   Props
	Keys    []string
}

// Vertices calls fn for every vertex id the op touches: its vertex, or both
// endpoints of its edge, or the source and every target of a replaceEdges.
// These ids form the op's conflict domain.
func (op *Op) Vertices(fn func(id string)) {
	switch op.Kind {
	case UpsertVertex, DeleteVertex, DropVertexProps:
		fn(op.ID)
	case UpsertEdge, DeleteEdge, DropEdgeProps:
		fn(op.From)
		fn(op.To)
	case ReplaceEdges:
		fn(op.From)
		for _, t := range op.Targets {
			fn(t)
		}
	}
}

// Size is an estimate of the op's weight in sink units: one for the element,
// one per property or key, one per replaceEdges target. Neptune counts
// "records" the same way (a label or a property each).
func (op *Op) Size() int {
	return 1 + len(op.Props) + len(op.Keys) + len(op.Targets)
}

// Write is one logical write: ops applied atomically, in order.
type Write struct {
	Key     string // ordering key: writes with the same key apply in source order
	ID      string // optional, for tracing and dead letters
	Version int64  // optional monotonic version; 0 when absent
	Ops     []Op
}

// Units is the write's weight in sink units (see Op.Size).
func (w *Write) Units() int {
	n := 0
	for i := range w.Ops {
		n += w.Ops[i].Size()
	}
	return n
}
