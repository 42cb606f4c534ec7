package gremlin

import (
	"errors"
	"fmt"
	"io"
	"net"
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
	{"Vertex with id already exists", graft.Permanent, "a vertex with this id has another label"},
	{"does not exist", graft.MissingEndpoint, "an edge endpoint does not exist"},
	{"SchemaViolationException", graft.Permanent, "the schema refuses the element"},
	{"PermanentLockingException", graft.Conflict, "JanusGraph lock contention: retry"},
	{"TemporaryLockingException", graft.Conflict, "JanusGraph lock contention: retry"},
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
	msg := err.Error()
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
