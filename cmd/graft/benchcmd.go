package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/config"

	"github.com/graftdb/graft/bench"
	rediscache "github.com/graftdb/graft/cache/redis"
	redislock "github.com/graftdb/graft/lock/redis"
)

const benchAbout = `
Runs the fleet workload of docs/DESIGN.md (organizations with property vertices,
devices, software, bursts of full-state "device software updated" events,
Zipf-skewed over organizations) with several strategies, one after the
other, on the same sink and the same writes, emptying the graph between
runs, and checks each final graph against the workload's model (computed by
the reference semantics, independently of any pipeline).

Strategies:
  graft          the engine
  graft-nocache  the engine without the write cache (ablation)
  graft-versions every write versioned by its place (guarded sinks check
                 versions; the cache eliminates nothing of such writes)
  naive          the graph writer's first design: a pool of --workers taking events
                 in arrival order, one transaction per event, conflicts
                 retried after a random 50-250 ms sleep, up to --attempts
  locked         the same pool with a lock per organization around each event
                 (in-process; in Redis with --redis, as the graph writer's Redisson lock)
  graft-redis    the engine with the write cache shared through Redis (--redis;
                 emptied before the run, so it starts cold like graft)
  graft-locker   the engine with the locker on (--redis): the locks' cost

Latency (p50, p99) is per write: the duration of the transaction that
committed it (for the pool strategies, including retry sleeps).

The default sink is a fresh embedded store in a temporary directory;
--sink postgres://… runs on PostgreSQL (its graph tables are emptied).`

func runBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f sinkFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	var (
		strategies string
		scale      float64
		skew       float64
		burst      int
		workers    int
		attempts   int
		asJSON     bool
		plot       string
		redisURL   string
	)
	fs := newFlagSet("bench", "graft bench [flags]", benchAbout)
	fs.StringVar(&f.c.Sink, "sink", "", "sink `URL`; default a fresh embedded store in a temporary directory")
	fs.StringVar(&strategies, "strategies", "graft,graft-nocache,naive,locked", "comma-separated `list` of strategies to run")
	fs.Float64Var(&scale, "scale", 0.3, "workload size: 100 × scale organizations, 10 devices each, 10 updates per device")
	fs.Float64Var(&skew, "skew", 1.1, "Zipf skew over organizations for updates (> 1; 0 for uniform)")
	fs.IntVar(&burst, "burst", 8, "consecutive updates of one organization")
	fs.IntVar(&workers, "workers", 16, "pool size of the naive and locked strategies")
	fs.IntVar(&attempts, "attempts", 5, "naive/locked: attempts per event before it is given up")
	fs.BoolVar(&asJSON, "json", false, `print {"runs":[…]} on stdout`)
	fs.StringVar(&redisURL, "redis", "", "Redis `URL` (redis://HOST:PORT/DB) for graft-redis, graft-locker and the locked strategy's locks; keys under the prefix graft-bench:")
	fs.StringVar(&plot, "plot", "", "draw writes/s and p99 per strategy into `FILE` (.svg)")
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if plot != "" && !strings.HasSuffix(plot, ".svg") {
		return usagef("--plot %q: only .svg is supported", plot)
	}
	opts := bench.Options{Strategies: strings.Split(strategies, ","), Workers: workers, Attempts: attempts}
	if scale <= 0 || workers <= 0 || attempts <= 0 {
		return usagef("--scale, --workers and --attempts must be positive")
	}
	if redisURL != "" {
		// The bench's keys live under their own prefix.
		shared, err := rediscache.Dial(withParam(redisURL, "prefix", "graft-bench:cache:"))
		if err != nil {
			return usagef("--redis: %v", err)
		}
		defer shared.Close()
		if err := shared.Ping(ctx); err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		lock, err := redislock.Dial(withParam(redisURL, "prefix", "graft-bench:lock:"))
		if err != nil {
			return usagef("--redis: %v", err)
		}
		defer lock.Close()
		opts.Shared, opts.Locker = shared, lock
	}
	if err := opts.Check(); err != nil {
		return usagef("--strategies: %v", err)
	}
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.Skew, cfg.Burst = max(int(100*scale), 1), skew, burst
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		return err
	}
	url := f.c.Sink
	if url == "" {
		dir, err := os.MkdirTemp("", "graft-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		url = "sqlite:" + filepath.Join(dir, "graph.db")
	}
	s, err := app.OpenSink(ctx, url, false)
	if err != nil {
		return err
	}
	defer s.Close()
	store, ok := s.(bench.Store)
	if !ok {
		return fmt.Errorf("sink %s cannot be emptied between runs", config.Redact(url))
	}
	fmt.Fprintf(stderr, "graft bench: %d writes (%d ops), %d organizations, on %s\n", len(wl.Writes), wl.Ops, cfg.Orgs, config.Redact(url))
	opts.Started = func(name string) { fmt.Fprintf(stderr, "  %-14s running…\n", name) }
	results, err := bench.Run(ctx, store, strings.SplitN(url, "?", 2)[0], wl, opts)
	if err != nil {
		return err
	}
	if asJSON {
		b, _ := json.Marshal(map[string]any{"runs": results})
		fmt.Fprintln(stdout, string(b))
	} else {
		bench.WriteTable(stdout, results)
	}
	for _, r := range results {
		if !r.Correct {
			fmt.Fprintf(stderr, "%s: the final graph differs from the model:\n%s", r.Strategy, r.Differences)
		}
	}
	if plot == "" {
		return nil
	}
	fh, err := os.Create(plot)
	if err != nil {
		return err
	}
	defer fh.Close()
	return bench.WriteSVG(fh, results)
}

// withParam returns the URL raw with the query parameter set.
func withParam(raw, key, value string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return raw // the parser of the URL's user reports it
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
