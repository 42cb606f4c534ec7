package deadletter_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/deadletter"
)

func TestAppendReadTakeRedrive(t *testing.T) {
	dir := t.TempDir()
	f, err := deadletter.Open(filepath.Join(dir, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	utf := &graft.Letter{WriteID: "w1", Key: "k", Class: "permanent", Error: "bad", Attempts: 3, FirstFailure: now, LastFailure: now, SourceKey: "sk"}
	utf.SetRaw([]byte(`{"ops":[]}`))
	bin := &graft.Letter{Class: "permanent", Error: "not utf-8", Attempts: 1}
	bin.SetRaw([]byte{0xff, 0x00, 'a'})
	if err := f.Append(context.Background(), []*graft.Letter{utf, bin}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	keys, err := deadletter.Keys(filepath.Join(dir, deadletter.FileName))
	if err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	taken, err := deadletter.TakeForRedrive(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, deadletter.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dead-letter file still there after take: %v", err)
	}
	src, err := deadletter.NewSource(taken)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := src.Fetch(context.Background())
	if err != nil || len(recs) != 2 {
		t.Fatalf("Fetch = %d records, %v", len(recs), err)
	}
	if string(recs[0].Value) != `{"ops":[]}` || recs[0].Key != "sk" || recs[0].Prior.Attempts != 3 {
		t.Errorf("record 0: %+v", recs[0])
	}
	if string(recs[1].Value) != "\xff\x00a" {
		t.Errorf("binary record came back as %q", recs[1].Value)
	}
	if _, err := src.Fetch(context.Background()); !errors.Is(err, io.EOF) {
		t.Errorf("Fetch after the end: %v, want EOF", err)
	}
	// A redrive that crashed left its file: the next take appends to it.
	f2, _ := deadletter.Open(filepath.Join(dir, deadletter.FileName))
	f2.Append(context.Background(), []*graft.Letter{{WriteID: "w9", Class: "permanent"}})
	f2.Close()
	if taken2, err := deadletter.TakeForRedrive(dir); err != nil || taken2 != taken {
		t.Fatalf("second take: %s, %v", taken2, err)
	}
	src2, _ := deadletter.NewSource(taken)
	if src2.Len() != 3 {
		t.Fatalf("%d letters after a second take, want 3", src2.Len())
	}
}

func letterAt(part string, off int64) *graft.Letter {
	l := &graft.Letter{Position: graft.Position{Partition: part, Offset: off}, Class: "permanent", Error: "bad", Attempts: 1}
	l.SetRaw([]byte(`{"ops":"x"}`))
	return l
}

func readAll(t *testing.T, path string) ([]*graft.Letter, error) {
	t.Helper()
	var out []*graft.Letter
	err := deadletter.Read(path, func(_ int, l *graft.Letter) error { out = append(out, l); return nil })
	return out, err
}

// A torn last line (a crash or a full disk while writing) is cut off and
// kept apart when the file is opened; the whole letters stay readable, and
// new letters start on a line of their own. Before, every read of the file
// failed from then on.
func TestTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), deadletter.FileName)
	d, err := deadletter.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Append(ctx, []*graft.Letter{letterAt("p", 1), letterAt("p", 2)}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"write_id":"torn","position":{"partit`)
	f.Close()
	d, err = deadletter.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Repaired == "" {
		t.Fatal("the torn tail was not reported")
	}
	if err := d.Append(ctx, []*graft.Letter{letterAt("p", 3)}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	ls, err := readAll(t, path)
	if err != nil || len(ls) != 3 || ls[2].Position.Offset != 3 {
		t.Fatalf("after the repair: %d letters, %v", len(ls), err)
	}
	torn, err := os.ReadFile(path + deadletter.TornSuffix)
	if err != nil || !strings.Contains(string(torn), `"write_id":"torn"`) {
		t.Fatalf("the torn bytes were not kept: %q %v", torn, err)
	}
}

// A line damaged in the middle is skipped and reported; every whole letter
// is still read.
func TestCorruptLineSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), deadletter.FileName)
	var b []byte
	for i, l := range []*graft.Letter{letterAt("p", 1), letterAt("p", 2), letterAt("p", 3)} {
		line, _ := l.MarshalLine()
		if i == 1 {
			line = append([]byte("\x00\x00garbage"), line[9:]...)
		}
		b = append(b, line...)
	}
	os.WriteFile(path, b, 0o644)
	ls, err := readAll(t, path)
	var ce *deadletter.CorruptError
	if !errors.As(err, &ce) || len(ce.Lines) != 1 || ce.Lines[0] != 2 || len(ls) != 2 {
		t.Fatalf("%d letters, %v", len(ls), err)
	}
}

// A record replayed after a crash (dead-lettered, then killed before its
// acknowledgement) gets one letter, not two; letters of records rejected at
// HTTP ingest, whose positions are indexes within a request, are all kept.
func TestLetterOncePerPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), deadletter.FileName)
	ctx := context.Background()
	for range 2 {
		d, err := deadletter.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Append(ctx, []*graft.Letter{letterAt("GRAFT", 7), letterAt("GRAFT", 8), letterAt("http", 0)}); err != nil {
			t.Fatal(err)
		}
		if err := d.Append(ctx, []*graft.Letter{letterAt("GRAFT", 8)}); err != nil {
			t.Fatal(err)
		}
		d.Close()
	}
	ls, err := readAll(t, path)
	if err != nil || len(ls) != 4 {
		t.Fatalf("%d letters (want 2 stream letters once and 2 from HTTP), %v", len(ls), err)
	}
}

// An interrupted redrive resumes after the letters it finished: none is
// redriven, nor written back, twice.
func TestRedriveResumes(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, _ := deadletter.Open(filepath.Join(dir, deadletter.FileName))
	var ls []*graft.Letter
	for i := range 10 {
		ls = append(ls, letterAt("p", int64(i)))
	}
	d.Append(ctx, ls)
	d.Close()
	taken, err := deadletter.TakeForRedrive(dir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := deadletter.NewSource(taken)
	if err != nil || src.Len() != 10 {
		t.Fatalf("%v, %d letters", err, src.Len())
	}
	recs, _ := src.Fetch(ctx)
	src.Ack(ctx, recs[5].Pos) // six done; then the process dies
	// The next redrive takes what came meanwhile too, and resumes.
	d, _ = deadletter.Open(filepath.Join(dir, deadletter.FileName))
	d.Append(ctx, []*graft.Letter{letterAt("q", 1)})
	d.Close()
	if taken, err = deadletter.TakeForRedrive(dir); err != nil {
		t.Fatal(err)
	}
	src, err = deadletter.NewSource(taken)
	if err != nil || src.Len() != 5 {
		t.Fatalf("resumed redrive: %v, %d letters, want 4 left and 1 new", err, src.Len())
	}
	recs, _ = src.Fetch(ctx)
	if recs[0].Prior.Position.Offset != 6 || recs[4].Prior.Position.Partition != "q" {
		t.Fatalf("resumed at %+v", recs[0].Prior.Position)
	}
	if err := deadletter.Finish(taken); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(taken + deadletter.DoneSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("progress left behind: %v", err)
	}
}
