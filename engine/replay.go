package engine

import "github.com/graftdb/graft"

// Replaying a batch that may have committed. A sink that fails without
// saying whether the transaction committed (a connection lost during the
// commit) leaves the batch in doubt, and the engine applies it again:
// every op is idempotent on its own, but a batch is not when a later write
// deletes a vertex an earlier one links to. [w2: edge v→b, w3: deleteVertex
// b] committed once, then replayed, fails w2 for the missing b (and w2
// would be dead-lettered although applying the writes one by one accepts
// it); [w2: edge v→b, w3: deleteVertex b, upsertVertex b] replayed brings
// Likewise [w1: upsertVertex b label x, w3: deleteVertex b, upsertVertex b
// label y] replayed fails w1 for b's label. An op on a vertex that a later
// write of the batch deletes — an edge op on it, an upsert or a props drop
// of it — has no effect on the final graph: the delete removes it all. So
// when such a write fails (a missing endpoint, a permanent error), it is
// applied again without those ops: the result is the graph the writes make
// one by one, whether the first attempt committed or not. (The one
// difference: if the first attempt did not commit and the write's failure
// was its own — b never existed — it is not dead-lettered; what it did to b
// could not have outlived w3 anyway.)
//
// One write is the same inside: [edge v→b, deleteVertex b] replayed fails
// its own edge op. Its ops on a vertex before its own last delete of it are
// left out the same way; the delete and what follows it stay.

// markInDoubt records, for each write of a batch that failed in doubt, the
// vertices later writes of the batch delete, and whether it deletes a
// vertex it wrote to before (selfDeletes).
func markInDoubt(cur []*node) {
	var later map[string]bool
	for i := len(cur) - 1; i >= 0; i-- {
		n := cur[i]
		n.selfDeletes = n.selfDeletes || deletesWhatItTouched(n.w)
		for id := range later {
			if n.deletedAfter == nil {
				n.deletedAfter = map[string]bool{}
			}
			n.deletedAfter[id] = true
		}
		for j := range n.w.Ops {
			if op := &n.w.Ops[j]; op.Kind == graft.DeleteVertex {
				if later == nil {
					later = map[string]bool{}
				}
				later[op.ID] = true
			}
		}
	}
}

// replayGone reports whether n, which failed, has ops on a vertex a later
// write of an in-doubt batch deleted, and from now on leaves them out
// (replayed). False if it already did.
func replayGone(n *node) bool {
	if n.gone || (len(n.deletedAfter) == 0 && !n.selfDeletes) {
		return false
	}
	n.gone = stripped(n) != n.w
	return n.gone
}

// replayed is the write to apply for n.
func replayed(n *node) *graft.Write {
	if !n.gone {
		return n.w
	}
	return stripped(n)
}

// deletesWhatItTouched reports whether w deletes a vertex an earlier op of
// w writes, links or drops props of.
func deletesWhatItTouched(w *graft.Write) bool {
	touched := map[string]bool{}
	for i := range w.Ops {
		op := &w.Ops[i]
		if op.Kind == graft.DeleteVertex && touched[op.ID] {
			return true
		}
		for _, id := range append([]string{op.ID, op.From, op.To}, op.Targets...) {
			if id != "" && (id != op.ID || !op.Kind.IsEdge()) {
				touched[id] = true
			}
		}
	}
	return false
}

// stripped is n's write without its ops on vertices a later write of an
// in-doubt batch deleted, nor those on a vertex before n's own last delete
// of it (n's write itself if it has none).
func stripped(n *node) *graft.Write {
	var lastDelete map[string]int // vertex → index of n's last delete of it
	if n.selfDeletes {
		lastDelete = map[string]int{}
		for i := range n.w.Ops {
			if op := &n.w.Ops[i]; op.Kind == graft.DeleteVertex {
				lastDelete[op.ID] = i
			}
		}
	}
	var kept []graft.Op
	changed := false
	for i := range n.w.Ops {
		op := n.w.Ops[i]
		gone := func(id string) bool {
			at, ok := lastDelete[id]
			return n.deletedAfter[id] || (ok && i < at)
		}
		switch {
		case op.Kind.IsEdge() && (gone(op.From) || gone(op.To)),
			op.Kind == graft.ReplaceEdges && gone(op.From),
			!op.Kind.IsEdge() && op.Kind != graft.ReplaceEdges && gone(op.ID):
			changed = true
			continue
		case op.Kind == graft.ReplaceEdges:
			var ts []string
			for _, t := range op.Targets {
				if !gone(t) {
					ts = append(ts, t)
				}
			}
			if len(ts) != len(op.Targets) {
				op.Targets, changed = ts, true
			}
		}
		kept = append(kept, op)
	}
	if !changed {
		return n.w
	}
	c := *n.w
	c.Ops = kept
	return &c
}
