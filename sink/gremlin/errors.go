package gremlin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/graftdb/graft"
)

// codes maps Neptune's error codes (the "code" of its error payload) and the
// markers of other servers to error classes. It is the only place where a
// Gremlin error gets its class; docs/gremlin.md shows it as a table.
var codes = []struct {
	marker string
	class  graft.Class
	why    string
}{
	// Neptune (docs.aws.amazon.com/neptune/latest/userguide/errors-engine-codes.html)
	{"ConcurrentModificationException", graft.Conflict, "another transaction holds an element: retry"},
	{"ReadOnlyViolationException", graft.Reconnect, "connected to a reader instance: reconnect to the cluster (writer) endpoint"},
	{"ConstraintViolationException", graft.MissingEndpoint, "an edge endpoint does not exist (or an id is taken)"},
	{"ThrottlingException", graft.Throttled, "the server's queue is full"},
	{"TooManyRequestsException", graft.Throttled, "too many requests"},
	{"MemoryLimitExceededException", graft.Throttled, "the query ran out of memory: smaller batches"},
	{"TimeLimitExceededException", graft.Throttled, "the query timed out: smaller batches"},
	{"CancelledByUserException", graft.Transient, "cancelled"},
	{"InternalFailureException", graft.Transient, "the server failed"},
	{"ServerShutdownException", graft.Reconnect, "the server is shutting down"},
	{"QueryTooLargeException", graft.TooLarge, "the request is over the server's size limit"},
	{"RequestTooLarge", graft.TooLarge, "the request is over the server's size limit"},
	{"MalformedQueryException", graft.Permanent, "the server refused the traversal"},
	{"BadRequestException", graft.Permanent, "the server refused the request"},
	{"InvalidParameterException", graft.Permanent, "a value the server does not accept"},
	{"UnsupportedOperationException", graft.Permanent, "the server does not support a step: check the dialect"},
	{"AccessDeniedException", graft.Fatal, "IAM denied the request: fix the credentials or the policy"},
	{"MissingAuthenticationTokenException", graft.Fatal, "the server requires IAM authentication"},
	// TinkerGraph / Gremlin Server / JanusGraph
	{markerNoConnection, graft.Reconnect, "cannot reach the server"},
	{"element modified in another transaction", graft.Conflict, "another transaction changed an element (TinkerTransactionGraph): retry"},
	{markerNoEndpoint, graft.MissingEndpoint, "an edge endpoint does not exist"},
	{markerVertexTaken, graft.Permanent, "a vertex with this id has another label"},
	{markerEdgeTaken, graft.Permanent, "an edge with this id has another label or other endpoints"},
	{"does not exist", graft.MissingEndpoint, "an edge endpoint does not exist"},
	{"SchemaViolationException", graft.Permanent, "the schema refuses the element"},
	{"Name contains reserved character", graft.Permanent, "JanusGraph refuses this character in a label or property key"},
	{"PermanentLockingException", graft.Conflict, "JanusGraph lock contention: retry"},
	{"TemporaryLockingException", graft.Conflict, "JanusGraph lock contention: retry"},
}

// What Gremlin Server (TinkerGraph) says, naming the element after the
// marker; attribute reads the id back.
const (
	markerWrite        = "graft write "                   // a fail() step of Graft's own, naming the write by its index
	markerMissing      = "graft missing endpoint, write " // the same, for a missing edge endpoint (JanusGraph dialect)
	markerNoConnection = "no successful connections could be made"
	markerNoEndpoint   = "Vertex id could not be resolved from mergeE: "
	markerVertexTaken  = "Vertex with id already exists: "
	markerEdgeTaken    = "Edge with id already exists: "
)

// attribute finds the write of a batch that a server error names, from the
// element id in its message: the first write that needs a missing
// endpoint, or that upserts a vertex or edge whose id is taken. It returns
// -1 when the message names no id or the id does not point at exactly one
// write (the engine then bisects).
func attribute(ws []*graft.Write, msg string) int {
	if m, i := ownFailure(msg); i >= 0 {
		rest := msg[i+len(m):]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil && n >= 0 && n < len(ws) {
				return n
			}
		}
		return -1
	}
	id, kind := "", ""
	for _, m := range []string{markerNoEndpoint, markerVertexTaken, markerEdgeTaken} {
		if i := strings.Index(msg, m); i >= 0 {
			rest := msg[i+len(m):]
			// gremlin-go renders the payload as {code:… message:… attributes:map[…]}
			if j := strings.Index(rest, " attributes:map["); j >= 0 {
				id, kind = rest[:j], m
			}
			break
		}
	}
	if kind == "" {
		return -1
	}
	switch kind {
	case markerNoEndpoint:
		created := false
		for i, w := range ws {
			for k := range w.Ops {
				op := &w.Ops[k]
				switch {
				case op.Kind == graft.DeleteVertex && op.ID == id:
					return -1 // the batch deletes it: which need failed depends on the store
				case op.Kind == graft.UpsertVertex && op.ID == id:
					created = true
				case !created && op.Kind == graft.UpsertEdge && (op.From == id || op.To == id),
					!created && op.Kind == graft.ReplaceEdges && (op.From == id || slices.Contains(op.Targets, id)):
					return i
				}
			}
		}
	case markerVertexTaken, markerEdgeTaken:
		// Gremlin Server 3.7 says "Vertex with id already exists" for an
		// edge id too: look for vertices first, then edges.
		for _, edge := range []bool{false, true} {
			if i := taken(ws, id, edge); i != -2 {
				return i
			}
		}
	}
	return -1
}

// taken returns the write the store refused for upserting the vertex (or
// edge) id that exists with another label (or other endpoints): a write
// that upserts it two ways itself (no delete of it between); else the first
// write that upserts it when every write of the batch does so the same way
// (the store refuses them all, the first one first). -1 when several writes
// do so differently (which one the store refused depends on the store), -2
// when none upserts it.
func taken(ws []*graft.Write, id string, edge bool) int {
	found, sig := -2, ""
	for i, w := range ws {
		mine := ""
		for k := range w.Ops {
			op := &w.Ops[k]
			var this string
			switch {
			case !edge && op.Kind == graft.UpsertVertex && op.ID == id:
				this = op.Label
			case edge && op.Kind == graft.UpsertEdge && op.ID == id:
				this = op.Label + "\x00" + op.From + "\x00" + op.To
			case !edge && op.Kind == graft.DeleteVertex && op.ID == id,
				edge && op.Kind == graft.DeleteEdge && op.ID == id,
				edge && op.Kind == graft.DeleteVertex: // perhaps an endpoint of the edge
				mine = ""
				continue
			default:
				continue
			}
			if mine != "" && this != mine {
				return i // it contradicts itself, whatever the store holds
			}
			mine = this
			switch {
			case found == -2:
				found, sig = i, this
			case this != sig:
				sig = "\x00several"
			}
		}
	}
	if sig == "\x00several" {
		return -1
	}
	return found
}

// ownFailure finds the fail() step of Graft's own that stopped a traversal:
// its marker (markerWrite or markerMissing) and where it starts in msg, or
// -1. The earliest one is it: the server's message names the fail() that
// fired, then prints the whole traversal, other fail() steps included.
func ownFailure(msg string) (string, int) {
	w, m := strings.Index(msg, markerWrite), strings.Index(msg, markerMissing)
	switch {
	case w >= 0 && (m < 0 || w < m):
		return markerWrite, w
	case m >= 0:
		return markerMissing, m
	}
	return "", -1
}

// errUnknown marks a server error no marker classifies: transient, but
// counted (Store.bound).
var errUnknown = errors.New("unclassified server error")

// classify gives a server or connection error its class. Errors no marker
// matches are transient (wrapping errUnknown): the store turns them
// permanent after unknown_retries in a row.
func classify(err error) *graft.Error {
	if err == nil {
		return nil
	}
	err = withoutStackTrace(err)
	msg := err.Error()
	switch m, _ := ownFailure(msg); m {
	case markerWrite:
		return graft.NewError(graft.Permanent, fmt.Errorf("the write contradicts the graph: %w", err))
	case markerMissing:
		return graft.NewError(graft.MissingEndpoint, fmt.Errorf("an edge endpoint does not exist: %w", err))
	}
	for _, c := range codes {
		if strings.Contains(msg, c.marker) {
			return graft.NewError(c.class, fmt.Errorf("%s: %w", c.why, err))
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(msg, "websocket: close") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe") {
		return graft.NewError(graft.Reconnect, err)
	}
	return graft.NewError(graft.Transient, fmt.Errorf("%w: %w", errUnknown, err))
}

// withoutStackTrace drops the Java stack trace Gremlin Server puts in an
// error's attributes (gremlin-go prints them: hundreds of lines per error,
// in every log line and dead letter). The message and the exception
// classes stay: the markers above are found in them.
func withoutStackTrace(err error) error {
	msg := err.Error()
	i := strings.Index(msg, " stackTrace:")
	if i < 0 {
		return err
	}
	end := strings.LastIndex(msg, "]}'")
	if end < i {
		end = len(msg)
	}
	return &trimmed{msg: msg[:i] + msg[end:], err: err}
}

// trimmed is an error with a shorter text than the error it wraps.
type trimmed struct {
	msg string
	err error
}

func (t *trimmed) Error() string { return t.msg }
func (t *trimmed) Unwrap() error { return t.err }
