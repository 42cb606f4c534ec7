package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/sink/sqlite"
)

func TestConformance(t *testing.T) {
	conformance.RunSink(t, func(t *testing.T) conformance.Target {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "graph.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return conformance.Target{Sink: s, Reader: s}
	})
}

// Processes opening a new store at the same moment migrate it once; a store
// from before fencing (schema 1) gains the fences table and keeps its graph.
func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graph.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlite.Open(context.Background(), path)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}

	old := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(sqlite.Migrations()[0] + `; INSERT INTO vertices VALUES ('a', 'v', '{"n":1}'); PRAGMA user_version = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlite.Open(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := &graft.Write{Key: "k", Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: "a", Label: "v", Props: graft.Props{"m": graft.Int(2)}}}}
	if err := s.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w}, Fence: 3}); err != nil {
		t.Fatalf("fenced write on a migrated store: %v", err)
	}
	v, err := s.Vertex(context.Background(), "a")
	if err != nil || v.Props["n"] != graft.Int(1) || v.Props["m"] != graft.Int(2) {
		t.Fatalf("vertex after migration: %+v %v", v, err)
	}
}

// A damaged file is named as such by export and reads, with what to do;
// before, export returned SQLite's bare "database disk image is malformed"
// and graft export printed none of what it had read.
func TestDamagedFileNamed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "graph.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var ws []*graft.Write
	for i := range 3000 {
		ws = append(ws, &graft.Write{Key: "k", Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: fmt.Sprintf("v%04d", i), Label: "x",
			Props: graft.Props{"s": graft.String(strings.Repeat("a", 50))}}}})
	}
	if err := s.Apply(ctx, &graft.Batch{Writes: ws}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 64; k += 5 {
		b[len(b)/2+k] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read := 0
	err = s.Export(ctx, func(*graft.Vertex) error { read++; return nil }, func(*graft.Edge) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "sqlite:"+path+": export: the file is damaged") || !strings.Contains(err.Error(), "PRAGMA integrity_check") {
		t.Fatalf("export of a damaged file after %d vertices: %v", read, err)
	}
	if read == 0 || read >= 3000 {
		t.Fatalf("%d vertices read before the damage; want some, not all", read)
	}
}
