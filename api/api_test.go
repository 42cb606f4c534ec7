package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/deadletter"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/sink/sqlite"
	"github.com/graftdb/graft/source/jetstream"
)

type fixture struct {
	url   string
	dlq   string
	sink  *sqlite.Store
	ping  *pinger
	token string
}

type pinger struct{ err error }

func (p *pinger) Ping(context.Context) error { return p.err }

// start runs the real thing in-process: embedded JetStream, engine, SQLite.
func start(t *testing.T, token string, maxBody int64) *fixture {
	t.Helper()
	return startWith(t, token, maxBody, nil)
}

func startWith(t *testing.T, token string, maxBody int64, tune func(*api.Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Dir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.DefaultConfig()
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := jetstream.New(ctx, emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "graph.db"))
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := deadletter.Open(filepath.Join(dir, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	ecfg := engine.Default()
	ecfg.Limits = graft.Limits{MaxRecordBytes: 4096, MaxOps: 100}
	eng, err := engine.New(store, dlq, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	wm := api.NewWatermark()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- eng.Run(runCtx, wm.Watch(src)) }()
	reg := prometheus.NewRegistry()
	reg.MustRegister(eng.Collectors()...)
	p := &pinger{}
	acfg := api.Config{
		Publisher: pub, Reader: store, Pinger: p, DLQ: dlq, Engine: eng, Committed: wm, Lag: src.Lag,
		Limits: ecfg.Limits, MaxBody: maxBody, Token: token, Registry: reg, WaitTimeout: 20 * time.Second,
	}
	if tune != nil {
		tune(&acfg)
	}
	srv := httptest.NewServer(api.New(acfg))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine: %v", err)
		}
		src.Close()
		emb.Close()
		dlq.Close()
		store.Close()
	})
	return &fixture{url: srv.URL, dlq: filepath.Join(dir, deadletter.FileName), sink: store, ping: p, token: token}
}

func (f *fixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return f.doWith(t, method, path, body, nil)
}

// doWith sends a request with headers (POST: application/x-ndjson unless
// given).
func (f *fixture) doWith(t *testing.T, method, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		}
		req.Header.Set(k, v)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWritesAndReads(t *testing.T) {
	f := start(t, "", 1<<20)
	ndjson := `{"key":"o1","ops":[{"op":"upsertVertex","id":"org/1","label":"organization","props":{"n":9007199254740993}}]}

{"key":"o1","ops":[{"op":"upsertVertex","id":"dev:1","label":"device"},{"op":"upsertEdge","label":"owns","from":"org/1","to":"dev:1"}]}
{"ops":[{"op":"upsertVertexx","id":"a","label":"x"}]}
`
	code, body := f.do(t, "POST", "/v1/writes?wait=committed", ndjson)
	if code != 200 {
		t.Fatalf("POST ?wait=committed: %d %s", code, body)
	}
	var resp api.WritesResponse
	json.Unmarshal([]byte(body), &resp)
	if resp.Accepted != 2 || !resp.Committed || len(resp.Invalid) != 1 || resp.Invalid[0].Index != 2 || !strings.Contains(resp.Invalid[0].Error, `ops[0].op: unknown op "upsertVertexx"`) {
		t.Fatalf("response %s", body)
	}
	// Committed means readable now.
	code, body = f.do(t, "GET", "/v1/vertices/org%2F1", "")
	if code != 200 || body != `{"id":"org/1","label":"organization","props":{"n":9007199254740993}}`+"\n" {
		t.Fatalf("GET vertex: %d %s", code, body)
	}
	code, body = f.do(t, "GET", "/v1/vertices/dev:1/edges?direction=in&label=owns", "")
	if code != 200 || !strings.Contains(body, `"from":"org/1","to":"dev:1"`) {
		t.Fatalf("GET edges: %d %s", code, body)
	}
	if code, body = f.do(t, "GET", "/v1/vertices/dev:1/edges?direction=out", ""); code != 200 || body != `{"edges":[]}`+"\n" {
		t.Fatalf("GET out edges: %d %s", code, body)
	}
	if code, _ = f.do(t, "GET", "/v1/vertices/nope", ""); code != 404 {
		t.Fatalf("unknown vertex: %d", code)
	}
	if code, _ = f.do(t, "GET", "/v1/vertices/nope/edges", ""); code != 404 {
		t.Fatalf("edges of unknown vertex: %d", code)
	}
	if code, body = f.do(t, "GET", "/v1/vertices/dev:1/edges?direction=sideways", ""); code != 400 || !strings.Contains(body, "direction") {
		t.Fatalf("bad direction: %d %s", code, body)
	}
	// A JSON array, without waiting.
	code, body = f.do(t, "POST", "/v1/writes", `[{"ops":[{"op":"upsertVertex","id":"x","label":"x"}]}, 42]`)
	if code != 202 || !strings.Contains(body, `"accepted":1`) || !strings.Contains(body, "not a number") {
		t.Fatalf("array: %d %s", code, body)
	}
	// The invalid records are dead letters.
	var letters []*graft.Letter
	deadletter.Read(f.dlq, func(_ int, l *graft.Letter) error { letters = append(letters, l); return nil })
	if len(letters) != 2 || letters[0].Raw == nil || !strings.Contains(*letters[0].Raw, "upsertVertexx") {
		t.Fatalf("dead letters: %+v", letters)
	}
	// Status settles: everything accepted is committed.
	var st api.Status
	for i := 0; i < 500; i++ {
		_, body = f.do(t, "GET", "/v1/status", "")
		json.Unmarshal([]byte(body), &st)
		if st.Committed == 3 && st.Pending == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Accepted != 3 || st.Committed != 3 || st.DeadLettered != 2 || st.Pending != 0 || st.SourceLag != 0 {
		t.Fatalf("status %s", body)
	}
	code, body = f.do(t, "GET", "/metrics", "")
	for _, m := range []string{"graft_writes_committed_total 3", "graft_http_records_invalid_total 2", `graft_http_requests_total{code="404",route="vertex"} 1`} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}

func TestBadRequests(t *testing.T) {
	f := start(t, "s3cret", 300)
	if code, _ := f.do(t, "GET", "/healthz", ""); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	for _, tc := range []struct {
		body string
		code int
		want string
	}{
		{``, 400, "no writes"},
		{`[{"ops":[]},`, 400, "malformed JSON array"},
		{strings.Repeat(" ", 301), 413, "over the limit of 300 bytes"},
	} {
		code, body := f.do(t, "POST", "/v1/writes", tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %.30q: %d %s, want %d containing %q", tc.body, code, body, tc.code, tc.want)
		}
	}
	if code, _ := f.do(t, "POST", "/v1/writes?wait=forever", `{"ops":[]}`); code != 400 {
		t.Errorf("wait=forever: %d", code)
	}
	f.token = "wrong"
	if code, body := f.do(t, "GET", "/v1/status", ""); code != 401 || !strings.Contains(body, "bearer token") {
		t.Errorf("wrong token: %d %s", code, body)
	}
	f.token = ""
	if code, _ := f.do(t, "POST", "/v1/writes", `{"ops":[{"op":"deleteVertex","id":"a"}]}`); code != 401 {
		t.Errorf("no token: %d", code)
	}
	// Readiness follows the sink.
	if code, _ := f.do(t, "GET", "/readyz", ""); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	f.ping.err = errors.New("sqlite:/x: disk I/O error")
	if code, body := f.do(t, "GET", "/readyz", ""); code != 503 || !strings.Contains(body, "disk I/O error") {
		t.Errorf("readyz with the sink down: %d %s", code, body)
	}
}

type rebalancingSource struct {
	graft.Source
	drain   func(context.Context, []string) error
	abandon func(string, int64)
}

func (s *rebalancingSource) SetDrain(d func(context.Context, []string) error) { s.drain = d }
func (s *rebalancingSource) SetAbandon(a func(string, int64))                 { s.abandon = a }
func (s *rebalancingSource) Ack(context.Context, graft.Position) error        { return nil }

// The watermark's wrapper must keep the source's drain hook (a Kafka source
// that lost it would hand partitions over without draining them), and wait
// per partition.
func TestWatermark(t *testing.T) {
	m := api.NewWatermark()
	src := &rebalancingSource{}
	w := m.Watch(src)
	rb, ok := w.(graft.Rebalancer)
	if !ok {
		t.Fatal("the wrapped source lost graft.Rebalancer")
	}
	called := false
	rb.SetDrain(func(context.Context, []string) error { called = true; return nil })
	if src.drain == nil || src.drain(context.Background(), nil) != nil || !called {
		t.Fatal("SetDrain did not reach the source")
	}
	if _, ok := m.Watch(struct{ graft.Source }{src}).(graft.Rebalancer); ok {
		t.Fatal("a source without the hook must not gain one")
	}
	// And its abandon hook (a Kinesis source that lost it would keep
	// applying a lost shard's records).
	ab, ok := w.(graft.Abandoner)
	if !ok {
		t.Fatal("the wrapped source lost graft.Abandoner")
	}
	var dropped string
	ab.SetAbandon(func(p string, _ int64) { dropped = p })
	if src.abandon == nil {
		t.Fatal("SetAbandon did not reach the source")
	}
	src.abandon("shard-1", 7)
	if dropped != "shard-1" {
		t.Fatal("the engine's abandon function was not the one given")
	}
	want := []graft.Position{{Partition: "t/0", Offset: 5}, {Partition: "t/1", Offset: 2}}
	w.Ack(context.Background(), graft.Position{Partition: "t/0", Offset: 9})
	if ok, _ := m.Reached(want); ok {
		t.Fatal("t/1 has not been acknowledged")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go w.Ack(context.Background(), graft.Position{Partition: "t/1", Offset: 2})
	if err := m.Wait(ctx, want); err != nil {
		t.Fatal(err)
	}
}

// A request full of invalid records costs bounded work: past
// http.max_invalid the request is refused whole, with a short answer and no
// dead letter written (before, 200,000 lines of "x" made 200,000 letters and
// an answer listing each).
func TestInvalidRecordsBounded(t *testing.T) {
	f := startWith(t, "", 8<<20, func(c *api.Config) { c.MaxInvalid = 50 })
	body := strings.Repeat("x\n", 200000)
	code, resp := f.do(t, "POST", "/v1/writes", body)
	if code != 400 || !strings.Contains(resp, "more than 50 invalid records") {
		t.Fatalf("POST of 200,000 invalid lines: %d %.300s", code, resp)
	}
	if len(resp) > 64<<10 {
		t.Fatalf("answer of %d bytes, want a short one", len(resp))
	}
	if n := countLetters(t, f.dlq); n != 0 {
		t.Fatalf("%d dead letters written for a refused request", n)
	}
	// Within the bound: the invalid ones are dead-lettered and listed, the
	// valid ones accepted.
	body = strings.Repeat("x\n", 50) + `{"ops":[{"op":"upsertVertex","id":"ok","label":"l"}]}` + "\n"
	code, resp = f.do(t, "POST", "/v1/writes?wait=committed", body)
	var wr api.WritesResponse
	if err := json.Unmarshal([]byte(resp), &wr); err != nil || code != 200 || wr.Accepted != 1 || len(wr.Invalid) != 50 {
		t.Fatalf("50 invalid and 1 valid: %d %.300s", code, resp)
	}
	if n := countLetters(t, f.dlq); n != 50 {
		t.Fatalf("%d dead letters, want 50", n)
	}
}

// Only JSON and NDJSON bodies are read: a web page's cross-site form can
// post text/plain without asking the browser first, not these. A request
// naming another origin is refused; with allowed hosts, so is another Host
// (DNS rebinding).
func TestCrossSiteRefused(t *testing.T) {
	f := startWith(t, "", 1<<20, func(c *api.Config) {
		c.Hosts = []string{"127.0.0.1", "localhost"}
		c.Origins = []string{"http://console.example"}
	})
	write := `{"ops":[{"op":"upsertVertex","id":"v","label":"l"}]}`
	for _, tc := range []struct {
		name   string
		header map[string]string
		code   int
	}{
		{"text/plain", map[string]string{"Content-Type": "text/plain"}, 415},
		{"form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"another origin", map[string]string{"Origin": "http://evil.example"}, 403},
		{"rebound host", map[string]string{"Host": "evil.example:8470"}, 421},
		{"allowed origin", map[string]string{"Origin": "http://console.example"}, 202},
		{"json", map[string]string{"Content-Type": "application/json; charset=utf-8"}, 202},
		{"localhost", map[string]string{"Host": "localhost:8470"}, 202},
	} {
		code, body := f.doWith(t, "POST", "/v1/writes", write, tc.header)
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	if code, _ := f.doWith(t, "GET", "/v1/status", "", map[string]string{"Host": "evil.example"}); code != 421 {
		t.Errorf("GET with a rebound host: %d, want 421", code)
	}
}

func countLetters(t *testing.T, path string) int {
	t.Helper()
	n := 0
	if err := deadletter.Read(path, func(int, *graft.Letter) error { n++; return nil }); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

// A record within the record limit that the stream cannot hold (over its
// maximum message size) is invalid: dead-lettered and listed, while the
// request's other records are accepted. Before, the whole request got 503
// "retry" forever and the record was never dead-lettered.
func TestRecordOverStreamMaximum(t *testing.T) {
	f := startWith(t, "", 8<<20, func(c *api.Config) { c.Limits = graft.Limits{MaxRecordBytes: 2 << 20, MaxOps: 100} })
	big := `{"ops":[{"op":"upsertVertex","id":"big","label":"l","props":{"s":"` + strings.Repeat("a", 1500<<10) + `"}}]}`
	small := `{"ops":[{"op":"upsertVertex","id":"small","label":"l"}]}`
	code, body := f.do(t, "POST", "/v1/writes", small+"\n"+big+"\n")
	var wr api.WritesResponse
	if err := json.Unmarshal([]byte(body), &wr); err != nil || code != 202 || wr.Accepted != 1 || len(wr.Invalid) != 1 ||
		wr.Invalid[0].Index != 1 || !strings.Contains(wr.Invalid[0].Error, "maximum message size") {
		t.Fatalf("%d %.400s", code, body)
	}
	if n := countLetters(t, f.dlq); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

// The watermark behind ?wait=committed: a position is reached when its
// partition's acknowledgement is at or past it, never one early, and the
// watermark never moves back.
func TestWatermarkPositions(t *testing.T) {
	m := api.NewWatermark()
	p := func(part string, off int64) graft.Position { return graft.Position{Partition: part, Offset: off} }
	if ok, _ := m.Reached([]graft.Position{p("a", 1)}); ok {
		t.Fatal("reached before any acknowledgement")
	}
	m.Advance(p("a", 5))
	for _, tc := range []struct {
		pos  []graft.Position
		want bool
	}{
		{[]graft.Position{p("a", 5)}, true},
		{[]graft.Position{p("a", 4), p("a", 5)}, true},
		{[]graft.Position{p("a", 6)}, false},
		{[]graft.Position{p("a", 5), p("b", 1)}, false},
	} {
		if ok, _ := m.Reached(tc.pos); ok != tc.want {
			t.Errorf("Reached(%v) after a:5 = %v, want %v", tc.pos, ok, tc.want)
		}
	}
	_, advanced := m.Reached([]graft.Position{p("a", 6)})
	m.Advance(p("a", 3)) // back: ignored, wakes nobody
	select {
	case <-advanced:
		t.Fatal("a move back woke a waiter")
	default:
	}
	if ok, _ := m.Reached([]graft.Position{p("a", 5)}); !ok {
		t.Fatal("the watermark moved back")
	}
	m.Advance(p("a", 6))
	select {
	case <-advanced:
	default:
		t.Fatal("an advance did not wake the waiter")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.Wait(ctx, []graft.Position{p("a", 7)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait for an unreached position: %v", err)
	}
}

// A source whose lag cannot be read (its server does not answer, a
// consumer is being recreated) is never reported caught up: source_lag and
// pending are -1 with the reason. Before, both read 0.
func TestUnknownLagIsNotCaughtUp(t *testing.T) {
	f := startWith(t, "", 0, func(c *api.Config) {
		c.Lag = func(context.Context) (int64, error) { return 0, errors.New("consumer graft: being recreated") }
	})
	_, body := f.do(t, "GET", "/v1/status", "")
	var st api.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.SourceLag != -1 || st.Pending != -1 || st.LagError != "consumer graft: being recreated" {
		t.Fatalf("status %s", body)
	}
}
