package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"

	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/locker"
	"github.com/graftdb/graft/sharedcache"
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
	names := strings.Split(strategies, ",")
	for _, n := range names {
		switch n {
		case "graft", "graft-nocache", "naive", "locked":
		case "graft-redis", "graft-locker":
			if redisURL == "" {
				return usagef("--strategies: %s needs --redis redis://HOST:PORT/DB", n)
			}
		default:
			return usagef("--strategies: unknown strategy %q (graft, graft-nocache, graft-redis, graft-locker, naive, locked)", n)
		}
	}
	if scale <= 0 || workers <= 0 || attempts <= 0 {
		return usagef("--scale, --workers and --attempts must be positive")
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
	s, err := openSink(ctx, url, false)
	if err != nil {
		return err
	}
	defer s.Close()
	store, ok := s.(bench.Store)
	if !ok {
		return fmt.Errorf("sink %s cannot be emptied between runs", url)
	}
	var (
		shared *sharedcache.Redis
		lock   *locker.Redis
	)
	if redisURL != "" {
		ro, o, err := sharedcache.ParseURL(redisURL)
		if err != nil {
			return usagef("--redis: %v", err)
		}
		o.Prefix = "graft-bench:cache:"
		shared = sharedcache.New(redis.NewClient(ro), o)
		defer shared.Close()
		if err := shared.Ping(ctx); err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		lock = locker.New(redis.NewClient(ro), "graft-bench:lock:")
		defer lock.Close()
	}
	fmt.Fprintf(stderr, "graft bench: %d writes (%d ops), %d organizations, on %s\n", len(wl.Writes), wl.Ops, cfg.Orgs, url)
	var results []bench.Result
	for _, name := range names {
		if err := store.Reset(ctx); err != nil {
			return fmt.Errorf("empty the graph: %w", err)
		}
		fmt.Fprintf(stderr, "  %-14s running…\n", name)
		var r bench.Result
		switch name {
		case "graft", "graft-nocache", "graft-redis", "graft-locker":
			ec := engine.Default()
			switch name {
			case "graft-nocache":
				ec.CacheSize = -1
			case "graft-redis":
				if err := shared.Clear(ctx); err != nil {
					return fmt.Errorf("empty the Redis cache: %w", err)
				}
				ec.SharedCache = shared
			case "graft-locker":
				ec.Locker = lock
			}
			r, err = bench.RunGraft(ctx, name, store, wl, ec)
		case "naive":
			r, err = bench.RunPool(ctx, name, store, wl, workers, attempts, false, nil)
		case "locked":
			var l engine.Locker
			if lock != nil {
				l = lock
			}
			r, err = bench.RunPool(ctx, name, store, wl, workers, attempts, true, l)
		}
		if err != nil {
			return fmt.Errorf("strategy %s: %w", name, err)
		}
		r.Sink, r.Writes, r.Ops = strings.SplitN(url, "?", 2)[0], len(wl.Writes), wl.Ops
		if r.Seconds > 0 {
			r.WritesPerSec = float64(r.Writes) / r.Seconds
		}
		if r.Correct, r.Differences, err = bench.Check(ctx, store, wl); err != nil {
			return err
		}
		results = append(results, r)
	}
	if asJSON {
		b, _ := json.Marshal(map[string]any{"runs": results})
		fmt.Fprintln(stdout, string(b))
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "strategy\twrites/s\tseconds\tconflicts\tretries\tdead letters\teliminated\tcoalesced\tp50 ms\tp99 ms\tcorrect\t")
		for _, r := range results {
			pct := func(n int64) string {
				if !strings.HasPrefix(r.Strategy, "graft") {
					return "-"
				}
				return fmt.Sprintf("%.0f%%", 100*float64(n)/float64(max(r.Ops, 1)))
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%d\t%d\t%d\t%s\t%s\t%.1f\t%.1f\t%v\t\n", r.Strategy, r.WritesPerSec, r.Seconds, r.Conflicts, r.Retries, r.DeadLetters,
				pct(r.Eliminated), pct(r.Coalesced), r.P50ms, r.P99ms, r.Correct)
		}
		tw.Flush()
	}
	for _, r := range results {
		if !r.Correct {
			fmt.Fprintf(stderr, "%s: the final graph differs from the model:\n%s", r.Strategy, r.Differences)
		}
	}
	if plot != "" {
		fh, err := os.Create(plot)
		if err != nil {
			return err
		}
		defer fh.Close()
		if err := bench.WriteSVG(fh, results); err != nil {
			return err
		}
	}
	return nil
}
