package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/redistest"
)

// graft ingest --cache redis://…: a second process (a restart) ingesting the
// same writes into the same graph learns from the warm Redis what the first
// established, and eliminates more than an in-process cache starting cold;
// the graph equals the model; the summary reports the cache.
func TestIngestWithRedisCache(t *testing.T) {
	srv := redistest.Start(t)
	cfg := bench.DefaultSeed()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = 12, 4, 20, 6
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, w := range wl.Writes {
		lines = append(lines, string(w.AppendJSON(nil)))
	}
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
