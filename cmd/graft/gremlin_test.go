package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/internal/gremlintest"
)

// graft ingest into a Gremlin server: one request per batch, a conflict
// retried; an unreachable server fails at once naming the endpoint.
func TestIngestIntoGremlin(t *testing.T) {
	srv := gremlintest.Start(t, func(n int, _ []byte) gremlintest.Reply {
		if n == 2 { // the first batch after the ping
			return gremlintest.Reply{Status: 500, Message: gremlintest.NeptuneError("ConcurrentModificationException", "Failed to complete Insert operation")}
		}
		return gremlintest.Reply{Status: 200}
	})
	in := writeFile(t,
		`{"key":"o1","ops":[{"op":"upsertVertex","id":"org:1","label":"organization"},{"op":"upsertVertex","id":"dev:1","label":"device"},{"op":"upsertEdge","label":"owns","from":"org:1","to":"dev:1"}]}`,
		`{"key":"o1","ops":[{"op":"upsertVertex","id":"dev:1","label":"device","props":{"serial":"x'); g.V().drop(); //"}}]}`)
	r := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--sink", srv.SinkURL(""), "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"committed":2`) || !strings.Contains(r.stdout, `"conflicts":1`) {
		t.Fatalf("ingest into Gremlin: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	last := srv.Request(srv.Count() - 1)
	for _, want := range []string{"mergeV", "mergeE", "x'); g.V().drop(); //"} {
		if !bytes.Contains(last, []byte(want)) {
			t.Errorf("the retried batch lacks %q", want)
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	r = graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--sink", "gremlin+ws://"+addr+"/gremlin")
	if r.code != 1 || !strings.Contains(r.stderr, addr) || time.Since(start) > 5*time.Second {
		t.Fatalf("unreachable Gremlin server: exit %d after %v: %s", r.code, time.Since(start), r.stderr)
	}
}
