// Package file is a Source that reads NDJSON writes from a file or a stream
// (stdin), one record per line. Blank lines are skipped. A record's position
// is its line number; its partition is the file's name.
package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
)

// Source reads records from an io.Reader.
type Source struct {
	name     string
	r        *bufio.Reader
	maxBytes int
	line     int64
	read     atomic.Int64 // bytes consumed
	acked    atomic.Int64 // last acknowledged line
	eof      bool
}

var _ graft.Source = (*Source)(nil)

// New returns a source reading r, named name in positions. Lines longer than
// maxBytes are delivered truncated, with Record.Truncated set, so that a
// huge line never has to be held in memory.
func New(name string, r io.Reader, maxBytes int) *Source {
	if maxBytes <= 0 {
		maxBytes = graft.DefaultLimits.MaxRecordBytes
	}
	return &Source{name: name, r: bufio.NewReaderSize(r, 256<<10), maxBytes: maxBytes}
}

// BytesRead is how much of the input has been consumed.
func (s *Source) BytesRead() int64 { return s.read.Load() }

// Acked is the last acknowledged line.
func (s *Source) Acked() int64 { return s.acked.Load() }

// Fetch implements graft.Source: up to 512 records per call.
func (s *Source) Fetch(ctx context.Context) ([]graft.Record, error) {
	if s.eof {
		return nil, io.EOF
	}
	var recs []graft.Record
	now := time.Now()
	for len(recs) < 512 {
		if err := ctx.Err(); err != nil {
			return recs, err
		}
		line, size, ok, err := s.readLine()
		if ok {
			s.line++
			if v := bytes.TrimSpace(line); len(v) > 0 {
				rec := graft.Record{Value: v, Pos: graft.Position{Partition: s.name, Offset: s.line}, Arrived: now, Version: s.line}
				if size > s.maxBytes {
					rec.Truncated = size
				}
				recs = append(recs, rec)
			}
		}
		if errors.Is(err, io.EOF) {
			s.eof = true
			if len(recs) == 0 {
				return nil, io.EOF
			}
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		if len(recs) > 0 && s.r.Buffered() == 0 {
			return recs, nil // do not wait on a slow stream with records in hand
		}
	}
	return recs, nil
}

// readLine returns the next line without its newline (at most maxBytes of
// it, copied), the line's full size, and whether there was a line at all.
func (s *Source) readLine() (line []byte, size int, ok bool, err error) {
	for {
		frag, err := s.r.ReadSlice('\n')
		s.read.Add(int64(len(frag)))
		ok = ok || len(frag) > 0
		if n := len(frag); n > 0 && frag[n-1] == '\n' {
			frag = frag[:n-1]
		}
		size += len(frag)
		if room := s.maxBytes - len(line); room > 0 {
			line = append(line, frag[:min(room, len(frag))]...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return line, size, ok, err
		}
	}
}

// Ack implements graft.Source; a file has nothing to commit, but the
// position is kept for progress reports.
func (s *Source) Ack(_ context.Context, pos graft.Position) error {
	s.acked.Store(pos.Offset)
	return nil
}

// Close implements graft.Source.
func (s *Source) Close() error { return nil }

// VersionOrder implements graft.Versioner: a record's version is its line
// number.
func (s *Source) VersionOrder() string { return "line number: the file's order" }
