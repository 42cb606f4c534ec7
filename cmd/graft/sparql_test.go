package main

import (
	"strings"
	"testing"

	"github.com/graftdb/graft/internal/virtuosotest"
)

// graft ingest into Virtuoso, then export from it: the fleet workload's
// graph equals its model.
func TestIngestIntoVirtuoso(t *testing.T) {
	srv := virtuosotest.Start(t)
	wl, lines := fleetWorkload(t, 6, 3, 10, 4)
	in := writeFile(t, lines...)
	sink := "sparql+" + srv.Endpoint + "?graph=urn:graft:cli"
	r := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--sink", sink, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"dead_letters":0`) {
		t.Fatalf("ingest: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", t.TempDir(), "--sink", sink)
	if exp.code != 0 {
		t.Fatalf("export: exit %d %s", exp.code, exp.stderr)
	}
	if d := diffExport(t, exp.stdout, wl.Model); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
	bad := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--sink", "sparql+http://127.0.0.1:1/sparql")
	if bad.code != 1 || !strings.Contains(bad.stderr, "127.0.0.1:1") {
		t.Fatalf("unreachable endpoint: exit %d %s", bad.code, bad.stderr)
	}
}
