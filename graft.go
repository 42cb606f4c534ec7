// Package graft holds the domain of Graft: writes and their ops, records and
// positions, error classes, and the roles the pipeline is built from — Source,
// Sink, Reader. It imports nothing but the standard library; every dependency
// on an outside system lives in the package named after it.
//
// See docs/DESIGN.md for the data flow and the invariants every part keeps.
package graft

import (
	"context"
	"errors"
	"sort"
	"time"
)

// Position is where a record sits in its source. Offsets increase within a
// partition; acknowledging a position acknowledges every record before it.
type Position struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Record is one message from a source: the raw write and where it came from.
type Record struct {
	Value   []byte
	Key     string // the source's record key, used when the write has none
	Pos     Position
	Arrived time.Time
	// Truncated, when non-zero, is the size of a record over the size limit
	// whose Value holds only its start (a source may refuse to hold it whole).
	Truncated int
	// Prior, when the record is a redriven dead letter, is that letter.
	Prior *Letter
	// Ref, when set, is the source's own name of the record where Pos
	// cannot hold it (a Kinesis sequence number, whose shard-local offset
	// is Graft's): dead letters carry it, so the record can be found in
	// the stream.
	Ref string
	// Lost, when set, says the source knows records existed here that it
	// cannot deliver (a damaged stream file): Value is empty, and the
	// engine dead-letters the record with class "lost" and this text, so
	// that the loss is counted, logged and kept, never skipped silently.
	// Pos is the last lost position.
	Lost string
	// Version is the version the source derives for the record (0: none),
	// which a pipeline with derived versions gives a write that carries
	// none (engine.Config.DeriveVersions; docs/DESIGN.md, "Versions").
	Version int64
}

// Versioner is a Source that derives a version for each of its records
// (Record.Version), deterministically, so that a record read again gets
// the same one. VersionOrder says what order the versions give across
// partitions, for messages and docs.
type Versioner interface {
	VersionOrder() string
}

// VersionOf packs a time in milliseconds since 1970 and a tie-breaker into
// one positive version: the milliseconds in the high 42 bits (enough until
// the year 2109), the tie-breaker's low 21 bits below. Records of one
// partition within one millisecond order by the tie-breaker (an offset)
// until it wraps, every 2,097,152 records.
func VersionOf(ms, tie int64) int64 {
	if ms <= 0 || ms >= 1<<42 {
		return 0
	}
	return ms<<21 | tie&(1<<21-1)
}

// Source delivers records and takes acknowledgements.
type Source interface {
	// Fetch blocks until records are available and returns them in source
	// order per partition. A finite source returns io.EOF once exhausted.
	Fetch(ctx context.Context) ([]Record, error)
	// Ack acknowledges every record of pos.Partition at or before pos.Offset:
	// each is committed to the sink or dead-lettered.
	Ack(ctx context.Context, pos Position) error
	Close() error
}

// Rebalancer is a Source whose partitions can be taken away (Kafka). The
// engine gives it, before fetching, a drain function that blocks until every
// record of the named partitions the engine holds is committed or
// dead-lettered and acknowledged.
type Rebalancer interface {
	SetDrain(drain func(ctx context.Context, partitions []string) error)
}

// Abandoner is a Source that can lose a partition without a drain: another
// instance took it (a Kinesis lease of an instance that stalled past its
// TTL) and replays it from its last checkpoint. The engine gives it, before
// fetching, an abandon function: the partition's records at or before
// through that the engine holds and has not yet sent to the sink are
// dropped — neither applied nor dead-lettered — so that they cannot land
// after the new owner's writes of the same keys. No acknowledgement comes
// for the partition's records held at that moment (applied or dropped).
// The abandonment holds for records delivered later too, until the source
// lifts it with a negative through — when it gets the partition back and
// reads it again from its last commit, at offsets it may have delivered
// before (Kafka); from then on what it delivers is applied. A source calls
// it so (through < 0) for every partition it gains, lost before or not:
// the engine then also forgets its in-process write cache, whose facts
// about the elements the partition's keys write may be stale (another
// instance wrote them meanwhile).
type Abandoner interface {
	SetAbandon(abandon func(partition string, through int64))
}

// Pauser is a Source that can stop delivering some of its partitions for a
// while (Kafka). The engine pauses a partition that holds as many records
// not yet done as its per-partition bound, so that a revoke or a handoff
// drains quickly under a backlog, and resumes it at half; a partition with
// a parked write (it may wait for a vertex a later record of the
// partition creates) is never paused. A source forgets a pause when the
// partition is revoked or lost, and ignores one for a partition it does not
// own.
type Pauser interface {
	Pause(partitions ...string)
	Resume(partitions ...string)
}

// Batch is an ordered list of writes the sink applies in one transaction.
type Batch struct {
	Writes []*Write
	// Fence, when not 0, is the fencing token of the locks held on the
	// writes' keys (the locker). A sink that supports fencing keeps the
	// highest token committed per key, in the same transaction, and refuses
	// a batch whose token is lower than one already committed for any of
	// its keys, with a Conflict error wrapping ErrFenced: its lease expired
	// and another holder has written since.
	Fence uint64
}

// ErrFenced is the cause of a batch refused by fencing.
var ErrFenced = errors.New("fenced: a newer lock holder has written these keys")

// FenceKeys returns the distinct keys of a batch's writes, sorted.
func (b *Batch) FenceKeys() []string {
	seen := make(map[string]bool, len(b.Writes))
	out := make([]string, 0, len(b.Writes))
	for _, w := range b.Writes {
		if !seen[w.Key] {
			seen[w.Key] = true
			out = append(out, w.Key)
		}
	}
	sort.Strings(out)
	return out
}

// SinkLimits are what a sink can take in one batch, and how many batches it
// can usefully apply at once.
type SinkLimits struct {
	MaxUnits    int // sink units per batch (see Op.Size)
	MaxBytes    int // bytes of raw records per batch
	MaxWrites   int // writes per batch
	Concurrency int // batches in flight at once
}

// Sink applies batches of writes. Apply runs the batch in one transaction:
// all of its writes commit, or none does. A failing Apply returns an error
// whose class (see ClassOf) tells the engine how to react, attributed to the
// failing write (Error.Index) when the sink can tell.
type Sink interface {
	Apply(ctx context.Context, b *Batch) error
	Limits() SinkLimits
	// Ping checks that the sink is reachable, naming the endpoint if not.
	Ping(ctx context.Context) error
	Close() error
}

// Direction selects edges relative to a vertex.
type Direction uint8

// Edge directions.
const (
	Out Direction = iota + 1
	In
	Both
)

// ParseDirection parses "out", "in" or "both".
func ParseDirection(s string) (Direction, bool) {
	switch s {
	case "out":
		return Out, true
	case "in":
		return In, true
	case "both", "":
		return Both, true
	}
	return 0, false
}

// Vertex is a vertex as the graph holds it.
type Vertex struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Props Props  `json:"props"`
}

// Edge is an edge as the graph holds it. ID is empty for an edge identified
// by (Label, From, To).
type Edge struct {
	ID    string `json:"id,omitempty"`
	Label string `json:"label"`
	From  string `json:"from"`
	To    string `json:"to"`
	Props Props  `json:"props"`
}

// Reader reads the graph a sink writes.
type Reader interface {
	// Vertex returns the vertex with the id, or ErrNotFound.
	Vertex(ctx context.Context, id string) (*Vertex, error)
	// Edges returns the edges of a vertex in a direction, all labels when
	// label is empty.
	Edges(ctx context.Context, id string, dir Direction, label string) ([]Edge, error)
	// Export calls the functions for every vertex, then for every edge.
	Export(ctx context.Context, vertex func(*Vertex) error, edge func(*Edge) error) error
}

// ErrNotFound: no such element.
var ErrNotFound = errors.New("not found")
