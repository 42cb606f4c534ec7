package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/internal/redistest"
)

// graft ingest --cache redis://…: a second process (a restart) ingesting the
// same writes into the same graph learns from the warm Redis what the first
// established, and eliminates more than an in-process cache starting cold;
// the graph equals the model; the summary reports the cache.
func TestIngestWithRedisCache(t *testing.T) {
	srv := redistest.Start(t)
	wl, lines := fleetWorkload(t, 12, 4, 20, 6)
	in := writeFile(t, lines...)
	dir := t.TempDir()
	cache := srv.URL(0) + "?prefix=test:&ttl=1h"
	type sum struct {
		Ops, Committed, EliminatedOps, CacheHits, CacheMisses int64
	}
	run := func(args ...string) sum {
		t.Helper()
		r := graftCmd(t, nil, append([]string{"ingest", in, "--data-dir", dir, "--json", "--batch-writes", "20"}, args...)...)
		if r.code != 0 {
			t.Fatalf("ingest %v: exit %d %s", args, r.code, r.stderr)
		}
		var s struct {
			Ops           int64 `json:"ops"`
			Committed     int64 `json:"committed"`
			EliminatedOps int64 `json:"eliminated_ops"`
			CacheHits     int64 `json:"cache_hits"`
			CacheMisses   int64 `json:"cache_misses"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
			t.Fatalf("summary %q: %v", r.stdout, err)
		}
		return sum{s.Ops, s.Committed, s.EliminatedOps, s.CacheHits, s.CacheMisses}
	}
	first := run("--cache", cache)
	if first.Committed != int64(len(wl.Writes)) || first.CacheMisses == 0 {
		t.Fatalf("first ingest: %+v", first)
	}
	warm := run("--cache", cache)
	cold := run("--cache", "memory")
	if warm.EliminatedOps <= cold.EliminatedOps || warm.CacheHits <= cold.CacheHits {
		t.Fatalf("a restart with a warm Redis eliminated %d ops (%d hits), an in-process cache starting cold %d (%d hits)",
			warm.EliminatedOps, warm.CacheHits, cold.EliminatedOps, cold.CacheHits)
	}
	t.Logf("replay of %d ops: warm Redis eliminated %d, cold in-process cache %d", warm.Ops, warm.EliminatedOps, cold.EliminatedOps)
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if d := diffExport(t, exp.stdout, wl.Model); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
	for arg, want := range map[string]string{"memcached://x": `cache.use: "memcached://x"`, "redis://u:hunter2@h:1/0?bogus=1": `unknown parameter "bogus"`} {
		r := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--cache", arg)
		if r.code != 2 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "hunter2") {
			t.Errorf("--cache %s: exit %d, want 2 with %q (and no password): %s", arg, r.code, want, r.stderr)
		}
	}
}

// Two graft processes ingest writes of the same keys into one store, with
// the locker and the shared cache on: both exit 0, the graph holds every
// write (each sets its own property, so the order between the processes
// does not matter), and the store recorded fencing tokens.
func TestTwoProcessesWithTheLocker(t *testing.T) {
	srv := redistest.Start(t)
	bin := buildGraft(t)
	store := filepath.Join(t.TempDir(), "shared.db")
	want := model.New()
	files := make([]string, 2)
	for p := range 2 {
		var lines []string
		for i := range 400 {
			n := p*400 + i
			l := fmt.Sprintf(`{"key":"k%d","ops":[{"op":"upsertVertex","id":"v%d","label":"v","props":{"w%d":%d}},{"op":"upsertVertex","id":"hot","label":"v","props":{"k%d":%d}}]}`, i%5, i%5, n, n, i%5, i%5)
			lines = append(lines, l)
			w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if err := want.ApplyWrite(w); err != nil {
				t.Fatal(err)
			}
		}
		files[p] = writeFile(t, lines...)
	}
	type out struct {
		code   int
		stderr string
	}
	done := make(chan out, 2)
	for p := range 2 {
		go func() {
			cmd := exec.Command(bin, "ingest", files[p], "--data-dir", t.TempDir(), "--sink", "sqlite:"+store, "--quiet",
				"--lock", srv.URL(5)+"?prefix=two:", "--cache", srv.URL(6), "--batch-writes", "10")
			var errb bytes.Buffer
			cmd.Stderr = &errb
			err := cmd.Run()
			code := 0
			if err != nil {
				code = -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
			}
			done <- out{code, errb.String()}
		}()
	}
	for range 2 {
		if o := <-done; o.code != 0 {
			t.Fatalf("graft ingest: exit %d\n%s", o.code, o.stderr)
		}
	}
	exp := graftCmd(t, nil, "export", "--data-dir", t.TempDir(), "--sink", "sqlite:"+store)
	if d := diffExport(t, exp.stdout, want); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
	db, err := sql.Open("sqlite", store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var keys, top int64
	if err := db.QueryRow(`SELECT count(*), max(token) FROM fences`).Scan(&keys, &top); err != nil || keys != 5 || top < 2 {
		t.Fatalf("fences: %d keys, highest token %d (%v); want the 5 keys fenced", keys, top, err)
	}
}
