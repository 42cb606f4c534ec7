package graft

import (
	"context"
	"errors"
	"fmt"
)

// Class is what kind of failure an error is, and so how the engine reacts to
// it (docs/DESIGN.md invariant 9).
type Class uint8

// Error classes. Every sink maps its errors to one of these.
const (
	// Transient: retry the batch after a backoff with full jitter.
	Transient Class = iota + 1
	// Conflict: another writer touched the same elements; retry smaller.
	Conflict
	// Throttled: the sink asks for less; back off longer and shrink.
	Throttled
	// TooLarge: the batch exceeds a sink limit; split it.
	TooLarge
	// Reconnect: the connection is gone; the sink reconnects, then retry.
	Reconnect
	// MissingEndpoint: an edge names a vertex that does not exist (yet);
	// park the write and retry it within a bound, then dead-letter it.
	MissingEndpoint
	// Permanent: the write can never succeed; isolate and dead-letter it.
	Permanent
	// Fatal: nothing can succeed (bad credentials, wrong schema); stop.
	Fatal
)

var classNames = [...]string{
	Transient:       "transient",
	Conflict:        "conflict",
	Throttled:       "throttled",
	TooLarge:        "too_large",
	Reconnect:       "reconnect",
	MissingEndpoint: "missing_endpoint",
	Permanent:       "permanent",
	Fatal:           "fatal",
}

func (c Class) String() string {
	if int(c) < len(classNames) && classNames[c] != "" {
		return classNames[c]
	}
	return "unknown"
}

// ParseClass is the inverse of Class.String.
func ParseClass(s string) (Class, bool) {
	for c, n := range classNames {
		if n == s && n != "" {
			return Class(c), true
		}
	}
	return 0, false
}

// Error is a classified error. Index is the position in the batch of the write
// that caused it, or -1 when the sink cannot tell (the engine then bisects).
type Error struct {
	Class Class
	Index int
	Err   error
}

// NewError returns a classified error not attributed to any write.
func NewError(class Class, err error) *Error { return &Error{Class: class, Index: -1, Err: err} }

// Errorf returns a classified error for the write at index (-1: unknown).
func Errorf(class Class, index int, format string, args ...any) *Error {
	return &Error{Class: class, Index: index, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err. Errors nobody classified are transient:
// retrying is safe (writes are idempotent) and loses nothing.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return Permanent
	}
	return Transient
}

// IndexOf returns the batch index of the write err is attributed to, or -1.
func IndexOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Index
	}
	return -1
}

// IsStop reports whether err means the caller asked to stop.
func IsStop(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// FieldError is a problem with one field of a record. Field is a path such as
// "ops[2].props.tier".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Sentinel errors of the domain.
var (
	// ErrTooLarge: a record over the configured byte limit.
	ErrTooLarge = errors.New("record too large")
	// ErrClosed: the component was closed.
	ErrClosed = errors.New("closed")
)
