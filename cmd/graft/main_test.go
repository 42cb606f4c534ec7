package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/source/jetstream"
)

type result struct {
	code           int
	stdout, stderr string
}

func graftCmd(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	return graftCtx(context.Background(), t, stdin, args...)
}

func graftCtx(ctx context.Context, t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errb syncBuffer
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	code := Main(ctx, args, stdin, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// syncBuffer is a buffer several goroutines may write, as they may write
// os.Stderr (the logger from background goroutines, the command itself).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.ndjson")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ingest → export gives the graph an independent model computes from the
// good writes; bad ones are dead letters; numbers and hostile strings survive.
func TestIngestThenExport(t *testing.T) {
	good := []string{
		`{"key":"o1","ops":[{"op":"upsertVertex","id":"org:1","label":"organization","props":{"big":9223372036854775807,"neg":-9223372036854775808,"f":1.0,"pi":3.14159}}]}`,
		`{"key":"o1","ops":[{"op":"upsertVertex","id":"dev:1","label":"device","props":{"q":"'); DROP TABLE vertices; --"}},{"op":"upsertEdge","label":"owns","from":"org:1","to":"dev:1"}]}`,
		`{"key":"o1","ops":[{"op":"upsertVertex","id":"g.V().drop()","label":"software"},{"op":"replaceEdges","from":"dev:1","label":"installed","to":["g.V().drop()"]}]}`,
		`{"key":"o2","ops":[{"op":"upsertVertex","id":"line\nbreak \"quoted\" \\ 日本","label":"x y","props":{"k\"ey":"v\u0000al"}}]}`,
	}
	bad := []string{
		`{"ops":[{"op":"upsertVertex","id":"dev:1","label":"software"}]}`,
		`{"ops":[`,
	}
	in := writeFile(t, good[0], "", good[1], bad[0], good[2], bad[1], good[3])
	dir := t.TempDir()
	r := graftCmd(t, nil, "ingest", in, "--data-dir", dir, "--json")
	if r.code != 0 {
		t.Fatalf("ingest exit %d: %s", r.code, r.stderr)
	}
	var sum map[string]float64
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatalf("--json summary %q: %v", r.stdout, err)
	}
	for field, want := range map[string]float64{"writes": 6, "ops": 7, "dead_letters": 2, "committed": 4} {
		if sum[field] != want {
			t.Errorf("summary %s = %v, want %v (%s)", field, sum[field], want, r.stdout)
		}
	}
	for _, field := range []string{"eliminated_ops", "coalesced_ops", "seconds"} {
		if _, ok := sum[field]; !ok {
			t.Errorf("summary lacks %s", field)
		}
	}
	if !strings.Contains(r.stderr, "2 dead letters") {
		t.Errorf("stderr summary: %q", r.stderr)
	}

	want := model.New()
	for _, l := range good {
		w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := want.ApplyWrite(w); err != nil {
			t.Fatal(err)
		}
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if exp.code != 0 {
		t.Fatalf("export exit %d: %s", exp.code, exp.stderr)
	}
	if d := diffExport(t, exp.stdout, want); d != "" {
		t.Fatalf("exported graph differs from the model:\n%s", d)
	}
	for _, lit := range []string{`"big":9223372036854775807`, `"neg":-9223372036854775808`, `"f":1.0`, `"pi":3.14159`} {
		if !strings.Contains(exp.stdout, lit) {
			t.Errorf("export lacks %s exactly as written:\n%s", lit, exp.stdout)
		}
	}
}

// Dead letters: listed in both formats; a redrive commits the letters whose
// cause is gone and brings the others back with attempts increased.
func TestDeadLettersListAndRedrive(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t,
		`{"id":"orphan","key":"k","ops":[{"op":"upsertVertex","id":"d1","label":"device"},{"op":"upsertEdge","label":"installed","from":"d1","to":"sw:later"}]}`,
		`not json at all`,
	)
	r := graftCmd(t, nil, "ingest", in, "--data-dir", dir, "--park-for", "20ms")
	if r.code != 0 {
		t.Fatalf("ingest exit %d: %s", r.code, r.stderr)
	}
	list := graftCmd(t, nil, "dlq", "list", "--data-dir", dir, "--format", "ndjson")
	letters := parseLetters(t, list.stdout)
	if len(letters) != 2 {
		t.Fatalf("%d letters, want 2:\n%s", len(letters), list.stdout)
	}
	orphan, junk := letters["orphan"], letters[""]
	if orphan == nil || orphan.Class != "missing_endpoint" || !strings.Contains(orphan.Error, `"sw:later"`) || orphan.Key != "k" {
		t.Fatalf("orphan letter: %+v", orphan)
	}
	if junk == nil || junk.Class != "permanent" || !strings.Contains(junk.Error, "malformed JSON") ||
		junk.Raw == nil || *junk.Raw != "not json at all" || junk.Position.Offset != 2 {
		t.Fatalf("junk letter: %+v", junk)
	}
	table := graftCmd(t, nil, "dlq", "list", "--data-dir", dir)
	if !strings.Contains(table.stdout, "missing_endpoint") || !strings.Contains(table.stdout, "2 dead letters") {
		t.Fatalf("table:\n%s", table.stdout)
	}

	// The missing vertex arrives; the redrive commits the orphan.
	fix := writeFile(t, `{"ops":[{"op":"upsertVertex","id":"sw:later","label":"software"}]}`)
	if r := graftCmd(t, nil, "ingest", fix, "--data-dir", dir); r.code != 0 {
		t.Fatalf("ingest exit %d: %s", r.code, r.stderr)
	}
	red := graftCmd(t, nil, "dlq", "redrive", "--data-dir", dir, "--park-for", "20ms")
	if red.code != 0 || !strings.Contains(red.stderr, "redrove 2 dead letters: 1 committed, 1 dead-lettered again") {
		t.Fatalf("redrive exit %d: %s", red.code, red.stderr)
	}
	after := parseLetters(t, graftCmd(t, nil, "dlq", "list", "--data-dir", dir, "--format", "ndjson").stdout)
	if len(after) != 1 || after[""] == nil || after[""].Attempts != 2 || !after[""].FirstFailure.Equal(junk.FirstFailure) ||
		after[""].Position != junk.Position {
		t.Fatalf("after redrive: %+v (before: %+v)", after[""], junk)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if !strings.Contains(exp.stdout, `{"type":"edge","label":"installed","from":"d1","to":"sw:later","props":{}}`) {
		t.Fatalf("redriven edge not in the graph:\n%s", exp.stdout)
	}
}

// diffExport compares graft export output with a model graph.
func diffExport(t *testing.T, out string, want *model.Graph) string {
	t.Helper()
	var gv []graft.Vertex
	var ge []graft.Edge
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		v, e, err := graft.ParseExportLine([]byte(line))
		if err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if v != nil {
			gv = append(gv, *v)
		} else {
			ge = append(ge, *e)
		}
	}
	wv, we := want.Snapshot()
	return model.Diff(wv, we, gv, ge)
}

func parseLetters(t *testing.T, out string) map[string]*graft.Letter {
	t.Helper()
	m := map[string]*graft.Letter{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var l graft.Letter
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("letter %q: %v", line, err)
		}
		m[l.WriteID] = &l
	}
	return m
}

func TestIngestFromStdinAndUnreachableSink(t *testing.T) {
	dir := t.TempDir()
	r := graftCmd(t, strings.NewReader(`{"ops":[{"op":"upsertVertex","id":"a","label":"x"}]}`+"\n"), "ingest", "-", "--data-dir", dir, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"committed":1`) {
		t.Fatalf("stdin ingest: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	bad := "sqlite:/proc/graft-no-such-dir/graph.db"
	r = graftCmd(t, nil, "ingest", "--sink", bad, writeFile(t, `{}`))
	if r.code != exitError || !strings.Contains(r.stderr, bad) {
		t.Fatalf("unreachable sink: exit %d, stderr %q; want exit 1 naming %s", r.code, r.stderr, bad)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, exitUsage, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"ingest", "--no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"ingest", "--policy", "sometimes", "x"}, exitUsage, "dead_letters.policy"},
		{[]string{"ingest", "a", "b"}, exitUsage, "one input file at most"},
		{[]string{"export", "--sink", "neo4j://x"}, exitUsage, `unknown scheme "neo4j"`},
		{[]string{"dlq"}, exitUsage, "missing subcommand"},
		{[]string{"dlq", "list", "--format", "xml"}, exitUsage, "--format"},
		{[]string{"ingest", "/no/such/file.ndjson", "--data-dir", t.TempDir()}, exitError, "no such file"},
		{[]string{"export", "--data-dir", t.TempDir()}, exitError, "no graph at sqlite:"},
	} {
		r := graftCmd(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr+r.stdout, tc.want) {
			t.Errorf("graft %v: exit %d, output %q; want exit %d containing %q", tc.args, r.code, r.stderr+r.stdout, tc.code, tc.want)
		}
	}
}

func TestHelpForEveryCommand(t *testing.T) {
	for _, c := range [][]string{{"ingest"}, {"export"}, {"dlq", "list"}, {"dlq", "redrive"}, {"dlq"}, {"version"}} {
		r := graftCmd(t, nil, append(c, "--help")...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("graft %v --help: exit %d, %q", c, r.code, r.stdout)
		}
	}
	r := graftCmd(t, nil, "ingest", "--help")
	for _, want := range []string{"-data-dir", "./graft-data", "-sink", "sqlite:<data-dir>/graph.db", "-json", "-policy", "-max-record-bytes", "1048576"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("ingest --help lacks %q", want)
		}
	}
	if r := graftCmd(t, nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "graft ") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
}

func TestDataDirLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := app.LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	r := graftCmd(t, nil, "ingest", "--data-dir", dir, writeFile(t, `{"ops":[{"op":"deleteVertex","id":"a"}]}`))
	if r.code != exitError || !strings.Contains(r.stderr, "in use by another graft process") {
		t.Fatalf("exit %d, %q", r.code, r.stderr)
	}
}

// SIGINT/SIGTERM (a cancelled context): stop reading, finish what is in
// flight, exit 0.
func TestGracefulStop(t *testing.T) {
	pr, pw := io.Pipe()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result)
	go func() { done <- graftCtx(ctx, t, pr, "ingest", "-", "--data-dir", dir, "--json") }()
	for i := 0; i < 100; i++ {
		if _, err := io.WriteString(pw, `{"ops":[{"op":"upsertVertex","id":"v`+string(rune('a'+i%26))+`","label":"x"}]}`+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		// Everything read before the stop is committed: nothing is left
		// half done.
		var sum struct{ Writes, Committed int }
		json.Unmarshal([]byte(r.stdout), &sum)
		if r.code != 0 || sum.Writes == 0 || sum.Committed != sum.Writes {
			t.Fatalf("exit %d, %s %s", r.code, r.stdout, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest did not stop")
	}
	pw.Close()
}

// graft demo posts the fleet workload through the HTTP API and ends with
// everything committed.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := graftCmd(t, nil, "demo", "--data-dir", dir, "--listen", "127.0.0.1:0", "--scale", "0.1", "--exit")
	if r.code != 0 || !strings.Contains(r.stderr, "1110 writes posted and committed") || !strings.Contains(r.stderr, "0 dead letters") {
		t.Fatalf("demo: exit %d\n%s", r.code, r.stderr)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	// 10 organizations: 10 org + 30 property + 100 device vertices, plus software.
	if n := strings.Count(exp.stdout, `"label":"organization"`); n != 10 {
		t.Fatalf("%d organizations exported, want 10", n)
	}
	if n := strings.Count(exp.stdout, `"label":"device"`); n != 100 {
		t.Fatalf("%d devices exported, want 100", n)
	}
}

// The config file sets what flags do not; flags override it.
func TestConfigFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "graft.yaml")
	os.WriteFile(cfgPath, []byte("data_dir: "+dir+"\nlimits:\n  max_ops: 1\n"), 0o644)
	in := writeFile(t, `{"ops":[{"op":"upsertVertex","id":"a","label":"x"},{"op":"upsertVertex","id":"b","label":"x"}]}`)
	r := graftCmd(t, nil, "ingest", "--config", cfgPath, in, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"dead_letters":1`) {
		t.Fatalf("max_ops 1 from the file: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = graftCmd(t, nil, "ingest", "--config", cfgPath, "--max-ops", "5", in, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"committed":1`) {
		t.Fatalf("--max-ops 5 over the file: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "graph.db")); err != nil {
		t.Fatalf("data_dir from the file not used: %v", err)
	}
	p := graftCmd(t, nil, "config", "print", "--config", cfgPath, "--concurrency", "3")
	if p.code != 0 || !strings.Contains(p.stdout, "max_ops: 1") || !strings.Contains(p.stdout, "concurrency: 3") {
		t.Fatalf("config print: %d %s %s", p.code, p.stdout, p.stderr)
	}
	os.WriteFile(cfgPath, []byte("batch:\n  max_writes: -1\ndead_letters:\n  policy: never\n"), 0o644)
	v := graftCmd(t, nil, "config", "validate", "--config", cfgPath)
	if v.code != exitError || !strings.Contains(v.stderr, "batch.max_writes") || !strings.Contains(v.stderr, "dead_letters.policy") {
		t.Fatalf("config validate: %d %s", v.code, v.stderr)
	}
	// What config validate calls ok, graft run accepts: each URL is read
	// by the package that will use it, without connecting.
	for _, tc := range []struct{ flag, value, want string }{
		{"--source", "kafka://localhost:9092/t", "group="},
		{"--source", "nats://localhost:4222/onlystream", "STREAM/SUBJECT"},
		{"--sink", "sparql+http://h/sparql?bogus=1", `unknown parameter "bogus"`},
		{"--cache", "redis://localhost:6379/0?nope=1", `unknown parameter "nope"`},
		{"--mapping", filepath.Join(t.TempDir(), "missing.yaml"), "mapping"},
	} {
		v := graftCmd(t, nil, "config", "validate", "--data-dir", t.TempDir(), tc.flag, tc.value)
		if v.code != exitError || !strings.Contains(v.stderr, tc.want) {
			t.Errorf("config validate %s %s: exit %d, %q; want %q", tc.flag, tc.value, v.code, v.stderr, tc.want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// graft run --source nats://… consumes an external JetStream server; writes
// posted to the API go through it; SIGTERM drains and exits 0.
func TestRunWithExternalJetStream(t *testing.T) {
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result)
	src := emb.ClientURL() + "/ORDERS/orders.graph"
	go func() {
		done <- graftCtx(ctx, t, nil, "run", "--data-dir", t.TempDir(), "--listen", addr, "--source", src, "--auth-token", "tok")
	}()
	var resp *http.Response
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/writes?wait=committed", strings.NewReader(`{"ops":[{"op":"upsertVertex","id":"o1","label":"order"}]}`))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", "application/x-ndjson")
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/vertices/o1", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if r := <-done; r.code != 0 || !strings.Contains(r.stderr, "source nats://") {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
}

// graft bench runs every strategy on the same writes and reports, per run,
// the fields of its JSON contract; graft's final graph is correct.
func TestBench(t *testing.T) {
	plot := filepath.Join(t.TempDir(), "bench.svg")
	r := graftCmd(t, nil, "bench", "--scale", "0.05", "--strategies", "graft,naive", "--json", "--plot", plot)
	if r.code != 0 {
		t.Fatalf("bench: exit %d %s", r.code, r.stderr)
	}
	var out struct {
		Runs []map[string]any `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Runs) != 2 {
		t.Fatalf("json %q: %v", r.stdout, err)
	}
	for _, run := range out.Runs {
		for _, f := range []string{"strategy", "sink", "writes", "ops", "seconds", "writes_per_sec", "conflicts", "retries", "dead_letters", "p50_ms", "p99_ms", "correct"} {
			if _, ok := run[f]; !ok {
				t.Errorf("run %v lacks %s", run["strategy"], f)
			}
		}
		if run["writes"].(float64) != 555 {
			t.Errorf("%v: %v writes, want 555", run["strategy"], run["writes"])
		}
	}
	if out.Runs[0]["strategy"] != "graft" || out.Runs[0]["correct"] != true {
		t.Errorf("graft run: %v", out.Runs[0])
	}
	if svg, err := os.ReadFile(plot); err != nil || !strings.Contains(string(svg), "<svg") || !strings.Contains(string(svg), ">naive<") {
		t.Errorf("plot: %v", err)
	}
}

// fleetWorkload is a small fleet workload (orgs organizations, devices each,
// software titles, software per update) and its writes as wire-format lines.
func fleetWorkload(t *testing.T, orgs, devices, software, perDevice int) (*bench.Workload, []string) {
	t.Helper()
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = orgs, devices, software, perDevice
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, len(wl.Writes))
	for i, w := range wl.Writes {
		lines[i] = string(w.AppendJSON(nil))
	}
	return wl, lines
}

// waitStatus polls GET /v1/status of a graft run until ok says so, and
// returns the last status; it fails the test (with the run's stderr, when
// stop gives it) after timeout.
func waitStatus(t *testing.T, addr string, timeout time.Duration, ok func(api.Status) bool, stop func() string) api.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var st api.Status
		if resp, err := http.Get("http://" + addr + "/v1/status"); err == nil {
			err := json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			msg := ""
			if stop != nil {
				msg = stop()
			}
			t.Fatalf("status never reached the expected state: %+v\n%s", st, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A data directory that does not exist is an error for dlq list and
// redrive, not "0 dead letters" or a new empty store.
func TestDLQMissingDataDir(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{{"dlq", "list", "--data-dir", missing}, {"dlq", "redrive", "--data-dir", missing}} {
		r := graftCmd(t, nil, args...)
		if r.code != exitError || !strings.Contains(r.stderr, "no such directory") {
			t.Errorf("%v: exit %d, %q", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing data directory was created: %v", err)
	}
}

// graft --help prints on stdout (graft --help | less works); graft with
// no arguments is a mistake and prints the usage on stderr.
func TestHelpOnStdout(t *testing.T) {
	r := graftCmd(t, nil, "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "Commands:") || r.stderr != "" {
		t.Fatalf("--help: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = graftCmd(t, nil)
	if r.code != exitUsage || !strings.Contains(r.stderr, "Commands:") {
		t.Fatalf("no arguments: exit %d, stderr %q", r.code, r.stderr)
	}
}

// graft export of a damaged graph.db prints the vertices it could read,
// exits 1, and says the export is incomplete, how far it got, and what to
// do (it exited with SQLite's bare message and printed nothing).
func TestExportOfDamagedStore(t *testing.T) {
	dir := t.TempDir()
	var in strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&in, `{"ops":[{"op":"upsertVertex","id":"v%04d","label":"x","props":{"s":"%s"}}]}`+"\n", i, strings.Repeat("a", 50))
	}
	if r := graftCmd(t, strings.NewReader(in.String()), "ingest", "--data-dir", dir, "-"); r.code != 0 {
		t.Fatalf("ingest: %d %s", r.code, r.stderr)
	}
	path := filepath.Join(dir, "graph.db")
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
	r := graftCmd(t, nil, "export", "--data-dir", dir)
	lines := strings.Count(r.stdout, "\n")
	if r.code != exitError || lines == 0 || lines >= 3000 ||
		!strings.Contains(r.stderr, fmt.Sprintf("the export is incomplete: it stopped after %d vertices and 0 edges", lines)) ||
		!strings.Contains(r.stderr, "the file is damaged") {
		t.Fatalf("exit %d, %d lines, stderr %s", r.code, lines, r.stderr)
	}
}
