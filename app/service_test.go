package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/config"
)

// startService runs graft run's assembly on embedded defaults in a
// temporary directory.
func startService(t *testing.T, tune func(*config.Config)) *app.Service {
	t.Helper()
	c := config.Default()
	c.DataDir, c.Listen = t.TempDir(), "127.0.0.1:0"
	if tune != nil {
		tune(&c)
	}
	svc, err := app.Start(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Stop()
		if err := svc.Wait(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return svc
}

// A request whose body never ends is cut off after http.read_timeout,
// instead of holding its connection (and a file handle) forever.
func TestBodyThatNeverEnds(t *testing.T) {
	svc := startService(t, func(c *config.Config) { c.HTTP.ReadTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", svc.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/writes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ops\r\n")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(bufio.NewReader(conn)) // returns when the server closes
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server still holds the connection of a body that never ends")
	}
}

// The API answers its own loopback names only: a page that rebinds its
// name to 127.0.0.1 is refused; an allowed host is answered.
func TestLoopbackHosts(t *testing.T) {
	svc := startService(t, func(c *config.Config) { c.HTTP.AllowedHosts = []string{"graft.internal"} })
	port := svc.Addr()[strings.LastIndexByte(svc.Addr(), ':'):]
	for host, want := range map[string]int{"127.0.0.1" + port: 200, "localhost" + port: 200, "graft.internal" + port: 200, "evil.example" + port: 421} {
		req, _ := http.NewRequest("GET", "http://"+svc.Addr()+"/v1/status", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// The embedded stream holds any record within limits.max_record_bytes:
// its maximum message size follows the setting (NATS's default is 1 MiB).
func TestEmbeddedStreamHoldsLargeRecords(t *testing.T) {
	svc := startService(t, func(c *config.Config) { c.Limits.MaxRecordBytes = 3 << 20 })
	post(t, svc, `{"ops":[{"op":"upsertVertex","id":"big","label":"l","props":{"s":"`+strings.Repeat("a", 2<<20)+`"}}]}`) // 2 MiB under a 3 MiB limit
	v, err := svc.Pipeline.Sink.Vertex(context.Background(), "big")
	if err != nil || len(v.Props["s"].Str()) != 2<<20 {
		t.Fatalf("vertex: %v", err)
	}
}

// A data directory keeps its name in the Kinesis lease table across
// restarts, so a restarted instance takes its own leases back at once.
func TestWorkerNameIsStable(t *testing.T) {
	dir := t.TempDir()
	a, err := app.WorkerName(dir)
	if err != nil || a == "" {
		t.Fatal(a, err)
	}
	b, _ := app.WorkerName(dir)
	c, _ := app.WorkerName(t.TempDir())
	if a != b || a == c {
		t.Fatalf("names %q, %q (same dir), %q (another dir)", a, b, c)
	}
}

// post sends NDJSON writes and waits until they are committed.
func post(t *testing.T, svc *app.Service, body string) {
	t.Helper()
	resp, err := http.Post("http://"+svc.Addr()+"/v1/writes?wait=committed", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d %s", resp.StatusCode, b)
	}
}

// graft run on a data dir whose consumer state is damaged (nats-server
// cannot open it: err_code=10012, which stopped the start) resets it, reads
// the stream again from the first record it holds, and goes on.
func TestDamagedConsumerStateIsReset(t *testing.T) {
	dir := t.TempDir()
	logs := &strings.Builder{}
	start := func() *app.Service {
		c := config.Default()
		c.DataDir, c.Listen = dir, "127.0.0.1:0"
		svc, err := app.Start(context.Background(), c, slog.New(slog.NewTextHandler(logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	stop := func(svc *app.Service) {
		svc.Stop()
		if err := svc.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	svc := start()
	post(t, svc, `{"ops":[{"op":"upsertVertex","id":"a","label":"l"}]}`)
	stop(svc)
	states, _ := filepath.Glob(filepath.Join(dir, "jetstream", "jetstream", "*", "streams", "*", "obs", "*", "o.dat"))
	if len(states) != 1 {
		t.Fatalf("consumer state files: %v", states)
	}
	if err := os.WriteFile(states[0], []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc = start()
	defer stop(svc)
	post(t, svc, `{"ops":[{"op":"upsertVertex","id":"b","label":"l"}]}`)
	for _, id := range []string{"a", "b"} {
		if _, err := svc.Pipeline.Sink.Vertex(context.Background(), id); err != nil {
			t.Fatalf("vertex %s: %v", id, err)
		}
	}
	if !strings.Contains(logs.String(), "consumer's state was damaged and is reset") {
		t.Fatalf("nothing logged about the reset:\n%s", logs)
	}
}
