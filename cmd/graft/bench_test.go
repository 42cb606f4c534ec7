package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/config"
)

// HTTP ingest through the embedded stream into the embedded store, against
// graft ingest of the same writes (go test ./bench -bench Ingest/fleet):
//
//	go test ./cmd/graft -run '^$' -bench HTTP -benchtime 1x
const httpBenchWrites = 20000

func startBenchService(b *testing.B) *app.Service {
	var f runFlags
	f.c = config.Default()
	f.c.DataDir = b.TempDir()
	f.c.Listen = "127.0.0.1:0"
	svc, err := app.Start(context.Background(), f.c, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

func fleetChunks(posters, chunk int) ([][][]byte, int) {
	gen := bench.NewFleet(bench.DefaultFleet())
	out := make([][][]byte, posters)
	bufs := make([]bytes.Buffer, posters)
	counts := make([]int, posters)
	for i := 0; i < httpBenchWrites; i++ {
		w := gen.Next()
		q := shard(w.Key, posters)
		bufs[q].Write(w.AppendJSON(nil))
		bufs[q].WriteByte('\n')
		if counts[q]++; counts[q] == chunk {
			out[q] = append(out[q], bytes.Clone(bufs[q].Bytes()))
			bufs[q].Reset()
			counts[q] = 0
		}
	}
	for q := range bufs {
		if bufs[q].Len() > 0 {
			out[q] = append(out[q], bytes.Clone(bufs[q].Bytes()))
		}
	}
	return out, httpBenchWrites
}

// BenchmarkHTTPIngest: sustained POST /v1/writes (4 clients, 200 writes a
// request) until every write is committed.
func BenchmarkHTTPIngest(b *testing.B) {
	chunks, total := fleetChunks(4, 200)
	var sum time.Duration
	for i := 0; i < b.N; i++ {
		svc := startBenchService(b)
		start := time.Now()
		var wg sync.WaitGroup
		for _, cs := range chunks {
			wg.Add(1)
			go func(cs [][]byte) {
				defer wg.Done()
				for _, c := range cs {
					resp, err := http.Post("http://"+svc.Addr()+"/v1/writes", "application/x-ndjson", bytes.NewReader(c))
					if err != nil || resp.StatusCode != 202 {
						b.Errorf("post: %v %v", resp, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}(cs)
		}
		wg.Wait()
		accepted := time.Since(start)
		for svc.API.Status(context.Background()).Committed < int64(total) {
			time.Sleep(5 * time.Millisecond)
		}
		sum += time.Since(start)
		b.ReportMetric(float64(total)/accepted.Seconds(), "accepted-writes/s")
		svc.Stop()
		svc.Wait(context.Background())
	}
	b.ReportMetric(float64(total*b.N)/sum.Seconds(), "committed-writes/s")
}

// BenchmarkHTTPLatency: single-write requests with ?wait=committed at a
// fixed rate (-rate, default half of the sustained rate measured above);
// reports accept-to-commit latency percentiles.
func BenchmarkHTTPLatency(b *testing.B) {
	const rate = 2500 // writes/s: about half of BenchmarkHTTPIngest's committed rate on the 2-core machine
	cfg := bench.DefaultFleet()
	gen := bench.NewFleet(cfg)
	// The organizations and devices first, in one request: concurrent
	// single-write requests may arrive in any order, and an update before
	// its device would wait for its missing endpoint.
	var setup bytes.Buffer
	for i := 0; i < cfg.Orgs*(cfg.DevicesPerOrg+1); i++ {
		setup.Write(gen.Next().AppendJSON(nil))
		setup.WriteByte('\n')
	}
	var bodies [][]byte
	for i := 0; i < 5000; i++ {
		bodies = append(bodies, gen.Next().AppendJSON(nil))
	}
	for i := 0; i < b.N; i++ {
		svc := startBenchService(b)
		resp, err := http.Post("http://"+svc.Addr()+"/v1/writes?wait=committed", "application/x-ndjson", bytes.NewReader(setup.Bytes()))
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("setup: %v %v", resp, err)
		}
		resp.Body.Close()
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for _, body := range bodies {
			<-tick.C
			wg.Add(1)
			go func(body []byte) {
				defer wg.Done()
				t0 := time.Now()
				resp, err := http.Post("http://"+svc.Addr()+"/v1/writes?wait=committed", "application/x-ndjson", bytes.NewReader(body))
				if err != nil || resp.StatusCode != 200 {
					st := svc.API.Status(context.Background())
					b.Errorf("post: %v %v; status %+v", resp.StatusCode, err, st)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}(body)
		}
		tick.Stop()
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(p(0.5), "p50-ms")
		b.ReportMetric(p(0.99), "p99-ms")
		b.ReportMetric(rate, "offered-writes/s")
		svc.Stop()
		svc.Wait(context.Background())
	}
}
