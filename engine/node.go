package engine

import (
	"container/heap"
	"time"

	"github.com/graftdb/graft"
)

type nodeState uint8

const (
	waiting nodeState = iota // some earlier conflicting write is not done
	ready                    // may join a batch
	batched                  // in a batch in flight
	parked                   // waiting for a missing endpoint, until due
	dying                    // dead letter being written
	done                     // committed or dead-lettered
)

// resource is an element of a conflict domain: an ordering key, or a vertex.
type resource struct {
	key bool
	id  string
}

// node is one record on its way through the engine.
type node struct {
	seq     uint64
	rec     graft.Record
	w       *graft.Write // nil when the record did not decode
	derr    error        // why it did not decode
	expired string       // why it is too old to apply (MaxRecordAge)
	units   int
	size    int // bytes of the raw record

	resources []resource // conflict domain: its key and every vertex it touches
	deps      int        // earlier conflicting nodes not done yet
	succ      []*node    // later nodes that conflict with this one
	batchSucc []*node    // those in the same batch, for the worker
	state     nodeState
	track     *partitionTrack
	trackIdx  uint64

	attempts    int
	firstFail   time.Time
	lastFail    time.Time
	parkedSince time.Time
	parkDelay   time.Duration
	due         time.Time
	parkExpired bool   // parked past ParkFor: the scheduler gives up or waits on
	parkErr     string // why it is parked (the sink's missing-endpoint error)
	witnessOf   string // the vertex it found missing, while it is parked (park.go)
	// What the sink's reader said when its parking expired (probeMissing):
	// the endpoints it needs that do not exist, when known; doomed when it
	// links to a vertex it deletes itself.
	missing        []string
	missingKnown   bool
	doomed         bool
	probedAllExist bool
	deferred       bool // behind a parked write of its key: holds no vertex for later writes (detach)
	// deletedAfter are the vertices that later writes of a batch deleted,
	// when that batch failed in doubt (it may have committed); once the
	// write fails for a missing endpoint (gone), it is applied without its
	// edge ops on them (replay.go).
	deletedAfter map[string]bool
	selfDeletes  bool // it deletes a vertex it touched before, and failed in doubt
	gone         bool

	// dead-letter details, set when the node is given up on
	deadClass string
	deadErr   string

	held   bool   // counted in the budget's held bound, not the in-flight one
	linked bool   // in the conflict graph (it decoded and is applied)
	mark   uint32 // scratch for batch building (the batch's id)
	hidx   int    // index in a heap
}

func (n *node) key() string {
	if n.w != nil {
		return n.w.Key
	}
	return n.rec.Key
}

// seqHeap orders nodes by arrival.
type seqHeap []*node

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].hidx = i; h[j].hidx = j }
func (h *seqHeap) Push(x any)        { n := x.(*node); n.hidx = len(*h); *h = append(*h, n) }
func (h *seqHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return n
}

// dueHeap orders parked nodes by when they may retry.
type dueHeap []*node

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].hidx = i; h[j].hidx = j }
func (h *dueHeap) Push(x any)        { n := x.(*node); n.hidx = len(*h); *h = append(*h, n) }
func (h *dueHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return n
}

var _ heap.Interface = (*seqHeap)(nil)

// partitionTrack is the acknowledgement watermark of one partition: records
// in arrival order, acknowledged up to the first one not done (invariant 2).
type partitionTrack struct {
	name    string
	base    uint64 // absolute index of entries[0]
	entries []trackEntry
	acked   int64
	hasAck  bool
	retired bool // its partition was lost: it acknowledges nothing more
}

type trackEntry struct {
	offset int64
	done   bool
}

func (t *partitionTrack) add(offset int64) uint64 {
	t.entries = append(t.entries, trackEntry{offset: offset})
	return t.base + uint64(len(t.entries)-1)
}

// markDone marks a record done and reports whether the watermark moved.
func (t *partitionTrack) markDone(idx uint64) bool {
	t.entries[idx-t.base].done = true
	moved := false
	i := 0
	for i < len(t.entries) && t.entries[i].done {
		t.acked, t.hasAck, moved = t.entries[i].offset, true, true
		i++
	}
	if i > 0 {
		t.base += uint64(i)
		t.entries = t.entries[i:]
		if cap(t.entries) > 1024 && len(t.entries) < cap(t.entries)/4 {
			t.entries = append([]trackEntry(nil), t.entries...)
		}
	}
	return moved
}
