package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/internal/kafkatest"
)

// examples/fleet: the sample events mapped by the example rules, ingested,
// export exactly the expected graph; the event no rule matches is a dead
// letter of class unmapped; graft map prints the same writes.
func TestFleetExample(t *testing.T) {
	dir := t.TempDir()
	ex := filepath.Join("..", "..", "examples", "fleet")
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
		t.Fatalf("export differs from examples/fleet/expected.ndjson:\n%s", exp.stdout)
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
	// unmapped: skip — the event is acknowledged, not dead-lettered.
	rulesText, _ := os.ReadFile(rules)
	skip := filepath.Join(t.TempDir(), "skip.yaml")
	os.WriteFile(skip, []byte(strings.Replace(string(rulesText), "unmapped: dead-letter", "unmapped: skip", 1)), 0o644)
	sr := graftCmd(t, nil, "ingest", events, "--data-dir", t.TempDir(), "--mapping", skip, "--json")
	if sr.code != 0 || !strings.Contains(sr.stdout, `"dead_letters":0`) || !strings.Contains(sr.stdout, `"skipped":1`) || !strings.Contains(sr.stdout, `"committed":6`) {
		t.Fatalf("unmapped: skip: exit %d %s %s", sr.code, sr.stdout, sr.stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: A\n    key: organizationId\n    ops:\n      - upsertVertex: {id: '\"x\" +', label: '\"l\"'}\n"), 0o644)
	r = graftCmd(t, nil, "ingest", events, "--data-dir", t.TempDir(), "--mapping", bad)
	if r.code != 2 || !strings.Contains(r.stderr, "bad.yaml: line 2: rule A: line 5: ops[0].upsertVertex.id") {
		t.Fatalf("a mapping that does not compile: exit %d %s", r.code, r.stderr)
	}
}

// graft route on kfake and on a real broker: the example's events on two
// topics (as the graph writer's services publish them) are mapped and
// produced to graph.write.<Rule>, keyed by organizationId; the unmapped one
// is a dead letter; graft run on graph.write.* then builds exactly the
// example's expected graph. On the package's shared broker every topic name
// is unique (a prefix of its own).
func TestRouteEndToEnd(t *testing.T) {
	kafkatest.OnBrokers(t, routeEndToEnd)
}

func routeEndToEnd(t *testing.T, kind string) {
	addrs, prefix := kafkatest.Broker(t, kind, map[string]int32{"event.org": 3, "event.device": 3, "graph.write.OrganizationWrite": 3, "graph.write.DeviceSoftwareUpdated": 3})
	events, writes := prefix+"event.", prefix+"graph.write."
	brokers := strings.Join(addrs, ",")
	ex := filepath.Join("..", "..", "examples", "fleet")
	raw, err := os.ReadFile(filepath.Join(ex, "events.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		topic := events + "org"
		if strings.Contains(line, "Device") {
			topic = events + "device"
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(line)})
	}
	if err := prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	routeDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- graftCtx(ctx, t, nil, "route", "--mapping", filepath.Join(ex, "mapping.yaml"), "--data-dir", routeDir,
			"--source", "kafka://"+brokers+"/"+regexp.QuoteMeta(events)+".*?group=router", "--to", "kafka://"+brokers, "--topic-prefix", writes)
	}()
	written := kafkatest.Records(t, addrs, writes+"DeviceSoftwareUpdated", 3)
	orgs := kafkatest.Records(t, addrs, writes+"OrganizationWrite", 3)
	for _, r := range append(written, orgs...) {
		if !strings.Contains(string(r.Value), `"key":"`+strings.ReplaceAll(string(r.Key), `"`, `\"`)+`"`) {
			t.Fatalf("record key %q is not the write's key: %s", r.Key, r.Value)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		l := graftCmd(t, nil, "dlq", "list", "--data-dir", routeDir, "--format", "ndjson")
		if strings.Contains(l.stdout, `"class":"unmapped"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unmapped event was not dead-lettered: %s", l.stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if r := <-done; r.code != 0 || !strings.Contains(r.stderr, "7 events: 6 routed, 0 skipped, 1 dead letters") {
		t.Fatalf("route: exit %d\n%s", r.code, r.stderr)
	}

	// The writer side: graft run on the routed topics builds the example's graph.
	dir, addr := t.TempDir(), freeAddr(t)
	rctx, rcancel := context.WithCancel(context.Background())
	rdone := make(chan result, 1)
	go func() {
		rdone <- graftCtx(rctx, t, nil, "run", "--data-dir", dir, "--listen", addr, "--source", "kafka://"+brokers+"/"+regexp.QuoteMeta(writes)+".*?group=writer")
	}()
	waitStatus(t, addr, 30*time.Second, func(st api.Status) bool { return st.Committed == 6 },
		func() string { rcancel(); return (<-rdone).stderr })
	rcancel()
	if r := <-rdone; r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	want, _ := os.ReadFile(filepath.Join(ex, "expected.ndjson"))
	if exp := graftCmd(t, nil, "export", "--data-dir", dir); exp.stdout != string(want) {
		t.Fatalf("the routed writes built another graph than examples/fleet/expected.ndjson:\n%s", exp.stdout)
	}
}
