package deadletter_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
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
