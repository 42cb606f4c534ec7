package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// examples/seed: the sample events mapped by the example rules, ingested,
// export exactly the expected graph; the event no rule matches is a dead
// letter of class unmapped; graft map prints the same writes.
func TestSeedExample(t *testing.T) {
	dir := t.TempDir()
	ex := filepath.Join("..", "..", "examples", "seed")
	events, rules := filepath.Join(ex, "events.ndjson"), filepath.Join(ex, "mapping.yaml")
	r := graftCmd(t, nil, "ingest", events, "--data-dir", dir, "--mapping", rules, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"committed":6`) || !strings.Contains(r.stdout, `"dead_letters":1`) {
		t.Fatalf("ingest: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	want, err := os.ReadFile(filepath.Join(ex, "expected.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if exp.stdout != string(want) {
		t.Fatalf("export differs from examples/seed/expected.ndjson:\n%s", exp.stdout)
	}
	letters := graftCmd(t, nil, "dlq", "list", "--data-dir", dir, "--format", "ndjson")
	if !strings.Contains(letters.stdout, `"class":"unmapped"`) || !strings.Contains(letters.stdout, `InvoicePaid`) {
		t.Fatalf("dead letters: %s", letters.stdout)
	}
	m := graftCmd(t, nil, "map", "--mapping", rules, events)
	if m.code != 1 || strings.Count(m.stdout, "\n") != 6 || !strings.Contains(m.stderr, "events.ndjson:7: unmapped") ||
		!strings.Contains(m.stderr, "6 mapped (DeviceSoftwareUpdated 3, OrganizationWrite 3)") {
		t.Fatalf("graft map: exit %d\n%s\n%s", m.code, m.stdout, m.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: A\n    key: organizationId\n    ops:\n      - upsertVertex: {id: '\"x\" +', label: '\"l\"'}\n"), 0o644)
	r = graftCmd(t, nil, "ingest", events, "--data-dir", t.TempDir(), "--mapping", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "bad.yaml: line 2: rule A: line 5: ops[0].upsertVertex.id") {
		t.Fatalf("a mapping that does not compile: exit %d %s", r.code, r.stderr)
	}
}
