// Package deadletter stores dead letters in an NDJSON file in the data
// directory, one graft.Letter per line, and reads them back for listing and
// redriving.
package deadletter

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/graftdb/graft"
)

// FileName is the dead-letter file in a data directory; RedriveName holds
// the letters a redrive has taken out of it until the redrive completes.
const (
	FileName    = "deadletters.ndjson"
	RedriveName = "deadletters.redrive.ndjson"
)

// File appends dead letters to a file, durably.
type File struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// Open opens (creating) the dead-letter file at path for appending.
func Open(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dead letters %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	return &File{path: path, f: f}, nil
}

var (
	_ graft.DeadLetters = (*File)(nil)
	_ graft.Source      = (*Source)(nil)
)

// Path is the file written.
func (d *File) Path() string { return d.path }

// Append writes the letters and syncs the file: when it returns nil they
// survive a crash.
func (d *File) Append(_ context.Context, letters []*graft.Letter) error {
	var buf []byte
	for _, l := range letters {
		b, err := l.MarshalLine()
		if err != nil {
			return fmt.Errorf("dead letter at %s:%d: %w", l.Position.Partition, l.Position.Offset, err)
		}
		buf = append(buf, b...)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.f.Write(buf); err != nil {
		return fmt.Errorf("dead letters %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("dead letters %s: sync: %w", d.path, err)
	}
	return nil
}

// Close closes the file.
func (d *File) Close() error { return d.f.Close() }

// Read calls fn for every letter in the file at path, in order. A missing
// file holds no letters. A line that does not decode (a torn last line after
// a crash) is reported with its line number.
func Read(path string, fn func(line int, l *graft.Letter) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dead letters: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			var l graft.Letter
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("%s:%d: torn last line (a crash while writing?): %v", path, line, jerr)
				}
				return fmt.Errorf("%s:%d: %v", path, line, jerr)
			}
			if ferr := fn(line, &l); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dead letters %s: %w", path, err)
		}
	}
}

// Keys returns the keys of the letters at path (for quarantine at start).
func Keys(path string) ([]string, error) {
	seen := map[string]bool{}
	var keys []string
	err := Read(path, func(_ int, l *graft.Letter) error {
		if l.Key != "" && !seen[l.Key] {
			seen[l.Key] = true
			keys = append(keys, l.Key)
		}
		return nil
	})
	return keys, err
}

// TakeForRedrive moves the letters of dir's dead-letter file into the redrive
// file (appending to one a crashed redrive left behind) and returns its path.
// New letters then go to a fresh dead-letter file.
func TakeForRedrive(dir string) (string, error) {
	main, red := filepath.Join(dir, FileName), filepath.Join(dir, RedriveName)
	if _, err := os.Stat(red); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(main, red); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("take dead letters: %w", err)
		}
		return red, syncDir(dir)
	}
	src, err := os.Open(main)
	if errors.Is(err, os.ErrNotExist) {
		return red, nil
	}
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.OpenFile(red, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	if err := errors.Join(dst.Sync(), dst.Close()); err != nil {
		return "", err
	}
	if err := os.Remove(main); err != nil {
		return "", err
	}
	return red, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Source replays letters as records, for redrive.
type Source struct {
	letters []*graft.Letter
	next    int
}

// NewSource reads the letters at path into a source.
func NewSource(path string) (*Source, error) {
	s := &Source{}
	err := Read(path, func(_ int, l *graft.Letter) error {
		s.letters = append(s.letters, l)
		return nil
	})
	return s, err
}

// Len is the number of letters.
func (s *Source) Len() int { return len(s.letters) }

// Fetch implements graft.Source.
func (s *Source) Fetch(ctx context.Context) ([]graft.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.next >= len(s.letters) {
		return nil, io.EOF
	}
	end := min(s.next+256, len(s.letters))
	recs := make([]graft.Record, 0, end-s.next)
	for i, l := range s.letters[s.next:end] {
		raw, err := l.Bytes()
		if err != nil {
			return nil, fmt.Errorf("letter %d: raw_base64: %w", s.next+i+1, err)
		}
		rec := graft.Record{Value: raw, Key: l.SourceKey, Prior: l,
			Pos: graft.Position{Partition: "redrive", Offset: int64(s.next + i + 1)}}
		if l.RawTruncated {
			rec.Truncated = l.RawBytes
		}
		recs = append(recs, rec)
	}
	s.next = end
	return recs, nil
}

// Ack implements graft.Source.
func (s *Source) Ack(context.Context, graft.Position) error { return nil }

// Close implements graft.Source.
func (s *Source) Close() error { return nil }
