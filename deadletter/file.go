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
	"strconv"
	"strings"
	"sync"

	"github.com/graftdb/graft"
)

// FileName is the dead-letter file in a data directory; RedriveName holds
// the letters a redrive has taken out of it until the redrive completes.
const (
	FileName    = "deadletters.ndjson"
	RedriveName = "deadletters.redrive.ndjson"
)

// File appends dead letters to a file, durably. A record's letter is
// written once: a letter for a source position the file already holds (the
// record replayed after a crash, between its letter and its acknowledgement)
// is dropped.
type File struct {
	path     string
	mu       sync.Mutex
	f        file
	size     int64 // bytes of whole lines
	seen     map[graft.Position]bool
	seenFIFO []graft.Position
	// Repaired says what Open cut from a torn tail ("" when nothing).
	Repaired string
}

// file is what File needs of its *os.File (a test fails its syncs).
type file interface {
	io.ReadWriteSeeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// rememberPositions bounds the positions File remembers for idempotence:
// replays after a crash redeliver the recent past, not the whole history.
const rememberPositions = 200_000

// TornSuffix names the file where Open keeps a torn tail it cut off.
const TornSuffix = ".torn"

// Open opens (creating) the dead-letter file at path for appending. A torn
// last line (a crash or a full disk while writing) is moved to path+".torn"
// and reported in Repaired, so that new letters start on a line of their
// own; the whole lines are kept.
func Open(path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("dead letters %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	d := &File{path: path, f: f, seen: map[graft.Position]bool{}}
	if err := d.load(); err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// load reads the positions of the file's letters and cuts a torn tail.
func (d *File) load() error {
	r := bufio.NewReaderSize(d.f, 64<<10)
	var off int64
	for {
		b, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(b) > 0 {
				return d.cutTail(off, b)
			}
			break
		}
		if err != nil {
			return fmt.Errorf("dead letters %s: %w", d.path, err)
		}
		off += int64(len(b))
		var l struct{ Position graft.Position }
		if json.Unmarshal(b, &l) == nil {
			d.remember(l.Position)
		}
	}
	d.size = off
	_, err := d.f.Seek(off, io.SeekStart)
	return err
}

// cutTail moves the unterminated bytes at off to the torn file and
// truncates the file to its whole lines.
func (d *File) cutTail(off int64, tail []byte) error {
	tf, err := os.OpenFile(d.path+TornSuffix, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("dead letters %s: keep the torn tail: %w", d.path, err)
	}
	_, werr := tf.Write(append(append([]byte{}, tail...), '\n'))
	if err := errors.Join(werr, tf.Sync(), tf.Close()); err != nil {
		return fmt.Errorf("dead letters %s: keep the torn tail: %w", d.path, err)
	}
	if err := errors.Join(d.f.Truncate(off), d.f.Sync()); err != nil {
		return fmt.Errorf("dead letters %s: cut the torn tail: %w", d.path, err)
	}
	d.size = off
	d.Repaired = fmt.Sprintf("%s ended in a torn line of %d bytes (a crash or a full disk while writing); it was moved to %s, the %d bytes of whole letters before it are kept",
		d.path, len(tail), d.path+TornSuffix, off)
	_, err = d.f.Seek(off, io.SeekStart)
	return err
}

func (d *File) remember(p graft.Position) {
	if p.Partition == "" || p.Partition == "http" {
		return // not a stable name: an index within one request
	}
	if d.seen[p] {
		return
	}
	d.seen[p] = true
	d.seenFIFO = append(d.seenFIFO, p)
	if len(d.seenFIFO) > rememberPositions {
		delete(d.seen, d.seenFIFO[0])
		d.seenFIFO = d.seenFIFO[1:]
	}
}

var (
	_ graft.DeadLetters = (*File)(nil)
	_ graft.Source      = (*Source)(nil)
)

// Path is the file written.
func (d *File) Path() string { return d.path }

// Append writes the letters and syncs the file: when it returns nil they
// survive a crash. A letter whose source position the file already holds is
// skipped. A failed write (a full disk) is cut back, so the file never
// keeps half a letter.
func (d *File) Append(_ context.Context, letters []*graft.Letter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var buf []byte
	var added []graft.Position
	for _, l := range letters {
		if d.seen[l.Position] {
			continue
		}
		b, err := l.MarshalLine()
		if err != nil {
			return fmt.Errorf("dead letter at %s:%d: %w", l.Position.Partition, l.Position.Offset, err)
		}
		buf = append(buf, b...)
		added = append(added, l.Position)
	}
	if len(buf) == 0 {
		return nil
	}
	if _, err := d.f.Write(buf); err != nil {
		d.f.Truncate(d.size)
		d.f.Seek(d.size, io.SeekStart)
		return fmt.Errorf("dead letters %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("dead letters %s: sync: %w", d.path, err)
	}
	d.size += int64(len(buf))
	for _, p := range added {
		d.remember(p)
	}
	return nil
}

// Close closes the file.
func (d *File) Close() error { return d.f.Close() }

// CorruptError reports lines of a dead-letter file that do not decode; Read
// returns it after calling fn for every whole letter.
type CorruptError struct {
	Path  string
	Lines []int
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: %d lines do not decode and were skipped (first: line %d); the other letters are whole", e.Path, len(e.Lines), e.Lines[0])
}

// Read calls fn for every letter in the file at path, in order. A missing
// file holds no letters. Lines that do not decode (a torn last line after a
// crash, a damaged disk) are skipped and reported at the end as a
// *CorruptError; fn's error stops the reading.
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
	var bad []int
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			var l graft.Letter
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				bad = append(bad, line)
			} else if ferr := fn(line, &l); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			if len(bad) > 0 {
				return &CorruptError{Path: path, Lines: bad}
			}
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

// Source replays letters as records, for redrive. It records how far the
// redrive got (path+".done": the number of letters committed or
// dead-lettered again, in order), so that a redrive interrupted and started
// again resumes after them instead of writing their letters twice.
type Source struct {
	letters []*graft.Letter
	next    int
	done    int64
	path    string
}

// DoneSuffix names the file that holds a redrive's progress.
const DoneSuffix = ".done"

// NewSource reads the letters at path into a source, after those a
// previous redrive of the file finished. A *CorruptError reports letters
// that could not be read (the others are in the source).
func NewSource(path string) (*Source, error) {
	s := &Source{path: path}
	if b, err := os.ReadFile(path + DoneSuffix); err == nil {
		s.done, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	err := Read(path, func(_ int, l *graft.Letter) error {
		s.letters = append(s.letters, l)
		return nil
	})
	s.next = int(min(s.done, int64(len(s.letters))))
	return s, err
}

// Len is the number of letters left to redrive.
func (s *Source) Len() int { return len(s.letters) - int(min(s.done, int64(len(s.letters)))) }

// Finish removes a redrive's file and its progress once every letter of it
// is done.
func Finish(path string) error {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if rerr := os.Remove(path + DoneSuffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

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

// Ack implements graft.Source: it records the progress durably.
func (s *Source) Ack(_ context.Context, pos graft.Position) error {
	if pos.Offset <= s.done {
		return nil
	}
	s.done = pos.Offset
	f, err := os.OpenFile(s.path+DoneSuffix, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("redrive progress: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%d\n", s.done)
	return errors.Join(werr, f.Sync(), f.Close())
}

// Close implements graft.Source.
func (s *Source) Close() error { return nil }
