package sqlite

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"

	"github.com/graftdb/graft"
)

// classify maps a SQLite error to a graft error class.
func classify(err error) graft.Class {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return graft.Transient
	}
	switch code := se.Code(); {
	case code == lib.SQLITE_CONSTRAINT_FOREIGNKEY:
		return graft.MissingEndpoint
	case code&0xff == lib.SQLITE_BUSY, code&0xff == lib.SQLITE_LOCKED:
		return graft.Conflict
	case code&0xff == lib.SQLITE_TOOBIG:
		return graft.TooLarge
	case code&0xff == lib.SQLITE_CONSTRAINT, code&0xff == lib.SQLITE_MISMATCH, code&0xff == lib.SQLITE_RANGE:
		return graft.Permanent
	case code&0xff == lib.SQLITE_READONLY, code&0xff == lib.SQLITE_CORRUPT, code&0xff == lib.SQLITE_NOTADB,
		code&0xff == lib.SQLITE_CANTOPEN, code&0xff == lib.SQLITE_PERM, code&0xff == lib.SQLITE_AUTH:
		return graft.Fatal
	}
	// SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM and the rest: the disk or the
	// machine may recover; retrying loses nothing.
	return graft.Transient
}

func wrap(err error, index int, format string, args ...any) error {
	return &graft.Error{Class: classify(err), Index: index, Err: fmt.Errorf(format+": %w", append(args, err)...)}
}
