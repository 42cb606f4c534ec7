package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/graftdb/graft"
)

// classify maps a PostgreSQL error to a graft error class.
func classify(err error) graft.Class {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch c := pe.Code; {
		case c == "40001", c == "40P01", c == "55P03": // serialization failure, deadlock, lock not available
			return graft.Conflict
		case c == "23503": // foreign key violation: an edge endpoint is missing
			return graft.MissingEndpoint
		case c == "54000", c == "54001": // program limit exceeded, statement too complex
			return graft.TooLarge
		case c == "53300", c == "57P01", c == "57P02", c == "57P03", strings.HasPrefix(c, "08"):
			return graft.Reconnect // too many connections, admin/crash shutdown, cannot connect now, connection exceptions
		case c == "53100", c == "53200", c == "57014": // disk full, out of memory, query canceled
			return graft.Transient
		case strings.HasPrefix(c, "22"), strings.HasPrefix(c, "23"): // data exceptions, integrity violations
			return graft.Permanent
		case strings.HasPrefix(c, "28"), c == "3D000", c == "42501", strings.HasPrefix(c, "42"):
			return graft.Fatal // authorization, no such database, privileges, schema problems
		}
		return graft.Transient
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) {
		return graft.Reconnect
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return graft.Transient
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		var pe2 *pgconn.PgError
		if errors.As(ce, &pe2) && strings.HasPrefix(pe2.Code, "28") {
			return graft.Fatal
		}
		return graft.Reconnect
	}
	return graft.Transient
}

func wrap(err error, index int, format string, args ...any) error {
	return &graft.Error{Class: classify(err), Index: index, Err: fmt.Errorf(format+": %w", append(args, err)...)}
}
