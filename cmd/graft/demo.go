package main

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/bench"
)

const demoAbout = `
Starts the service exactly as "graft run" does (embedded stream, embedded
store, HTTP API), generates the fleet workload of docs/DESIGN.md — organizations
with property vertices, devices, software, and bursts of full-state "device
software updated" events skewed over organizations — and posts it through
the HTTP API, showing progress: writes/s, pending, conflicts avoided by
scheduling, ops eliminated and coalesced.

At the end it prints a summary and keeps serving so that the graph can be
browsed (GET /v1/vertices/org:000001, /v1/status, graft export); --exit
stops instead. Scale 1 is 100 organizations, 1,000 devices, about 11,000
writes and 200,000 ops.`

func runDemo(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f runFlags
	var scale float64
	var exit bool
	var posters int
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("demo", "graft demo [flags]", demoAbout)
	f.register(fs)
	fs.Float64Var(&scale, "scale", 1, "workload size: organizations = 100 × scale, updates = 10 per device")
	fs.BoolVar(&exit, "exit", false, "stop once everything is committed instead of serving on")
	fs.IntVar(&posters, "posters", 4, "concurrent HTTP clients (each owns a share of the organizations, so each key stays in order)")
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if scale <= 0 || posters <= 0 {
		return usagef("--scale and --posters must be positive")
	}
	svc, err := app.Start(ctx, f.c, warnLog(stderr))
	if err != nil {
		return err
	}
	base := "http://" + svc.Addr()
	fmt.Fprintf(stderr, "graft demo: serving %s, data in %s\n", base, f.c.DataDir)

	cfg := bench.DefaultFleet()
	cfg.Orgs = max(int(100*scale), 1)
	total := cfg.Orgs*(cfg.DevicesPerOrg+1) + cfg.Orgs*cfg.DevicesPerOrg*10
	gen := bench.NewFleet(cfg)

	// Each poster takes the writes of its share of the organizations, in
	// order, and posts them in chunks.
	queues := make([]chan []byte, posters)
	for i := range queues {
		queues[i] = make(chan []byte, 4)
	}
	var posted atomic.Int64
	var postErr error
	var once sync.Once
	var wg sync.WaitGroup
	client := &http.Client{Timeout: time.Minute}
	for i := range queues {
		wg.Add(1)
		go func(q chan []byte) {
			defer wg.Done()
			for body := range q {
				n := int64(bytes.Count(body, []byte("\n")))
				resp, err := client.Post(base+"/v1/writes", "application/x-ndjson", bytes.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusAccepted {
						err = fmt.Errorf("POST /v1/writes: HTTP %d", resp.StatusCode)
					}
				}
				if err != nil {
					once.Do(func() { postErr = err })
					continue
				}
				posted.Add(n)
			}
		}(queues[i])
	}
	start := time.Now()
	stopProgress := startProgress(stderr, false, func() string {
		st := svc.API.Status(ctx)
		el := time.Since(start).Seconds()
		return fmt.Sprintf("posted %d/%d · committed %d · pending %d · %.0f writes/s · %d conflicts avoided · %d ops eliminated · %d coalesced",
			posted.Load(), total, st.Committed, st.Pending+(int64(total)-posted.Load()), float64(st.Committed)/el, st.AvoidedConflicts, st.Eliminated, st.Coalesced)
	})
	bufs := make([]bytes.Buffer, posters)
	counts := make([]int, posters)
	for i := 0; i < total && ctx.Err() == nil; i++ {
		w := gen.Next()
		q := shard(w.Key, posters)
		bufs[q].Write(w.AppendJSON(nil))
		bufs[q].WriteByte('\n')
		if counts[q]++; counts[q] == 200 {
			queues[q] <- bytes.Clone(bufs[q].Bytes())
			bufs[q].Reset()
			counts[q] = 0
		}
	}
	for q := range queues {
		if bufs[q].Len() > 0 {
			queues[q] <- bytes.Clone(bufs[q].Bytes())
		}
		close(queues[q])
	}
	wg.Wait()
	for ctx.Err() == nil && postErr == nil {
		if st := svc.API.Status(ctx); st.Pending == 0 && st.Committed+st.DeadLettered >= posted.Load() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopProgress()
	st := svc.API.Status(ctx)
	el := time.Since(start)
	fmt.Fprintf(stderr, "graft demo: %d writes posted and committed in %.1fs (%.0f writes/s); %d dead letters; %d conflicts avoided by batching; %d ops eliminated, %d coalesced\n",
		posted.Load(), el.Seconds(), float64(st.Committed)/el.Seconds(), st.DeadLettered, st.AvoidedConflicts, st.Eliminated, st.Coalesced)
	if postErr != nil {
		fmt.Fprintf(stderr, "graft demo: some posts failed: %v\n", postErr)
	}
	if !exit && ctx.Err() == nil {
		fmt.Fprintf(stderr, "\nBrowse the graph while the service runs (Ctrl-C stops it):\n  curl %s/v1/vertices/org:000001\n  curl '%s/v1/vertices/dev:000001:0001/edges?direction=out&label=installed'\n  curl %s/v1/status\n  graft export --data-dir %s   (after stopping, or from another shell)\n",
			base, base, base, f.c.DataDir)
	} else {
		svc.Stop()
	}
	err = svc.Wait(ctx)
	if postErr != nil && err == nil {
		err = postErr
	}
	return err
}

// shard spreads keys over n clients, each key always to the same one, so
// that a client posts its keys' writes in order.
func shard(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
