package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/internal/fuseki"
	"github.com/graftdb/graft/internal/virtuosotest"
)

// graft ingest into each real SPARQL store, then graft export from it: the
// fleet workload's graph equals its model. Virtuoso runs with its default
// row cap (10,000 rows a SELECT), which the graph exceeds: the export used
// to lack edges past it.
func TestIngestIntoSPARQLStores(t *testing.T) {
	orgs := 36                                        // 3,996 writes: the reported scenario
	if v := os.Getenv("GRAFT_SPARQL_ORGS"); v != "" { // 360: ten times larger
		var err error
		if orgs, err = strconv.Atoi(v); err != nil {
			t.Fatalf("GRAFT_SPARQL_ORGS: %v", err)
		}
	}
	wl, lines := fleetWorkload(t, orgs, 10, 100, 20)
	in := writeFile(t, lines...)
	for _, store := range []struct {
		name     string
		endpoint func(t *testing.T) string
	}{
		{"Virtuoso", func(t *testing.T) string { return virtuosotest.Start(t).Endpoint }},
		{"Fuseki", func(t *testing.T) string {
			srv := fuseki.Start(t)
			t.Cleanup(srv.Stop)
			return srv.Endpoint
		}},
	} {
		t.Run(store.name, func(t *testing.T) {
			sink := "sparql+" + store.endpoint(t) + "?graph=urn:graft:cli"
			start := time.Now()
			r := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--sink", sink, "--json")
			if r.code != 0 || !strings.Contains(r.stdout, `"dead_letters":0`) {
				t.Fatalf("ingest: exit %d %s %s", r.code, r.stdout, r.stderr)
			}
			took := time.Since(start)
			exp := graftCmd(t, nil, "export", "--data-dir", t.TempDir(), "--sink", sink)
			if exp.code != 0 {
				t.Fatalf("export: exit %d %s", exp.code, exp.stderr)
			}
			if d := diffExport(t, exp.stdout, wl.Model); d != "" {
				t.Fatalf("graph differs from the model:\n%s", d)
			}
			t.Logf("%d writes ingested in %v (%.0f writes/s), %d lines exported", len(lines), took, float64(len(lines))/took.Seconds(), strings.Count(exp.stdout, "\n"))
		})
	}
	bad := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--sink", "sparql+http://127.0.0.1:1/sparql")
	if bad.code != 1 || !strings.Contains(bad.stderr, "127.0.0.1:1") {
		t.Fatalf("unreachable endpoint: exit %d %s", bad.code, bad.stderr)
	}
}
