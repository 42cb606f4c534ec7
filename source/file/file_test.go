package file_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/source/file"
)

func fetchAll(t *testing.T, s *file.Source) []graft.Record {
	t.Helper()
	var all []graft.Record
	for {
		recs, err := s.Fetch(context.Background())
		all = append(all, recs...)
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Positions are line numbers, blank lines are skipped but counted, a last
// line without a newline is a record, and an oversized line is delivered
// truncated with its full size.
func TestLinesAndPositions(t *testing.T) {
	long := strings.Repeat("x", 100)
	in := "a\n\n  \r\nb\r\n" + long + "\nc"
	s := file.New("in.ndjson", strings.NewReader(in), 10)
	recs := fetchAll(t, s)
	want := []struct {
		value     string
		line      int64
		truncated int
	}{{"a", 1, 0}, {"b", 4, 0}, {"xxxxxxxxxx", 5, 100}, {"c", 6, 0}}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		// The derived version is the line number (graft.Versioner).
		if string(r.Value) != w.value || r.Pos.Offset != w.line || r.Pos.Partition != "in.ndjson" || r.Truncated != w.truncated || r.Version != w.line {
			t.Errorf("record %d: %q line %d truncated %d version %d; want %q line %d truncated %d, version the line",
				i, r.Value, r.Pos.Offset, r.Truncated, r.Version, w.value, w.line, w.truncated)
		}
	}
	if s.BytesRead() != int64(len(in)) {
		t.Errorf("BytesRead %d, want %d", s.BytesRead(), len(in))
	}
}

// A line longer than the reader's buffer is read whole (up to the limit).
func TestLongLine(t *testing.T) {
	long := strings.Repeat("y", 1<<20)
	recs := fetchAll(t, file.New("x", strings.NewReader(long+"\nz\n"), 2<<20))
	if len(recs) != 2 || len(recs[0].Value) != 1<<20 || recs[0].Truncated != 0 || string(recs[1].Value) != "z" {
		t.Fatalf("got %d records", len(recs))
	}
}
