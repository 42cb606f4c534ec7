package graft

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// DeadLetters stores dead letters durably. Append returns once they are safe.
type DeadLetters interface {
	Append(ctx context.Context, letters []*Letter) error
}

// Letter is a dead letter: a record the pipeline gave up on, with what is
// known of why. It is stored as one JSON object per line.
type Letter struct {
	WriteID      string    `json:"write_id,omitempty"`
	Key          string    `json:"key,omitempty"`
	Position     Position  `json:"position"`
	Class        string    `json:"class"` // an error Class, or "quarantined"
	Error        string    `json:"error"`
	Attempts     int       `json:"attempts"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
	// Raw is the record as received, when it is UTF-8; RawBase64 otherwise.
	Raw          *string `json:"raw,omitempty"`
	RawBase64    string  `json:"raw_base64,omitempty"`
	RawTruncated bool    `json:"raw_truncated,omitempty"` // the record was over the size limit; Raw holds its start
	RawBytes     int     `json:"raw_bytes"`               // size of the record as received
	SourceKey    string  `json:"source_key,omitempty"`    // the source's record key
	SourceRef    string  `json:"source_ref,omitempty"`    // the source's own name of the record (graft.Record.Ref), e.g. a Kinesis sequence number
}

// ClassQuarantined is the class of a letter dead-lettered only because an
// earlier write of its key was, under the quarantine policy.
const ClassQuarantined = "quarantined"

// ClassUnmapped is the class of a letter whose event no mapping rule
// matched (see ErrUnmapped).
const ClassUnmapped = "unmapped"

// ErrUnmapped is the cause of an event no mapping rule matches.
var ErrUnmapped = errors.New("unmapped: no rule matches the event")

// ClassExpired is the class of a letter whose record was older than the max
// record age when Graft took it from the source.
const ClassExpired = "expired"

// ClassLost is the class of a letter that stands for records the source
// lost (graft.Record.Lost): it has no content, only where and how many.
const ClassLost = "lost"

// RejectedClass is the class of a record refused before any attempt to
// apply it: unmapped when no mapping rule matched it, else permanent.
func RejectedClass(err error) string {
	if errors.Is(err, ErrUnmapped) {
		return ClassUnmapped
	}
	return Permanent.String()
}

// Rejected is the letter of a record refused before any attempt to apply
// it (it did not decode or map): one attempt, now, the record kept.
func Rejected(pos Position, err error, raw []byte, sourceKey string, now time.Time) *Letter {
	l := &Letter{Position: pos, Class: RejectedClass(err), Error: err.Error(), Attempts: 1, FirstFailure: now, LastFailure: now,
		RawBytes: len(raw), SourceKey: sourceKey}
	l.SetRaw(raw)
	return l
}

// SetRaw stores the record's bytes in the letter, as text when they are UTF-8.
func (l *Letter) SetRaw(b []byte) {
	if utf8.Valid(b) {
		s := string(b)
		l.Raw, l.RawBase64 = &s, ""
		return
	}
	l.Raw, l.RawBase64 = nil, base64.StdEncoding.EncodeToString(b)
}

// Bytes returns the record's bytes.
func (l *Letter) Bytes() ([]byte, error) {
	if l.Raw != nil {
		return []byte(*l.Raw), nil
	}
	return base64.StdEncoding.DecodeString(l.RawBase64)
}

// MarshalLine encodes the letter as one line of NDJSON, newline included.
func (l *Letter) MarshalLine() ([]byte, error) {
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
