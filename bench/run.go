package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
)

// Strategies are the strategies Run knows, in the order of the help.
var Strategies = []string{"graft", "graft-nocache", "graft-versions", "graft-redis", "graft-locker", "naive", "locked"}

// SharedCache is a shared write cache that a run can empty (Redis).
type SharedCache interface {
	graft.SharedCache
	Clear(ctx context.Context) error
}

// Options shape a Run.
type Options struct {
	Strategies []string
	Workers    int // pool size of naive and locked
	Attempts   int // naive and locked: attempts per event
	// Shared and Locker, when set, serve graft-redis, graft-locker and the
	// locked strategy's locks; graft-redis and graft-locker need them.
	Shared SharedCache
	Locker graft.Locker
	// Started, when set, is told the name of each strategy as it starts.
	Started func(name string)
}

// Check reports a strategy Run cannot run with o, naming it.
func (o Options) Check() error {
	for _, n := range o.Strategies {
		switch n {
		case "graft", "graft-nocache", "graft-versions", "naive", "locked":
		case "graft-redis", "graft-locker":
			if o.Shared == nil || o.Locker == nil {
				return fmt.Errorf("%s needs Redis (--redis redis://HOST:PORT/DB)", n)
			}
		default:
			return fmt.Errorf("unknown strategy %q (%s)", n, strings.Join(Strategies, ", "))
		}
	}
	return nil
}

// Run runs each strategy on the same writes, one after the other, emptying
// the graph before each, and checks each final graph against the model.
func Run(ctx context.Context, store Store, sinkName string, wl *Workload, o Options) ([]Result, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	var results []Result
	for _, name := range o.Strategies {
		if err := store.Reset(ctx); err != nil {
			return nil, fmt.Errorf("empty the graph: %w", err)
		}
		if o.Started != nil {
			o.Started(name)
		}
		var r Result
		var err error
		switch name {
		case "graft", "graft-nocache", "graft-versions", "graft-redis", "graft-locker":
			ec := engine.Default()
			run := wl
			switch name {
			case "graft-versions":
				run = wl.WithVersions()
			case "graft-nocache":
				ec.CacheSize = -1
			case "graft-redis":
				if err := o.Shared.Clear(ctx); err != nil {
					return nil, fmt.Errorf("empty the Redis cache: %w", err)
				}
				ec.SharedCache = o.Shared
			case "graft-locker":
				ec.Locker = o.Locker
			}
			r, err = RunGraft(ctx, name, store, run, ec)
		case "naive":
			r, err = RunPool(ctx, name, store, wl, o.Workers, o.Attempts, false, nil)
		case "locked":
			r, err = RunPool(ctx, name, store, wl, o.Workers, o.Attempts, true, o.Locker)
		}
		if err != nil {
			return nil, fmt.Errorf("strategy %s: %w", name, err)
		}
		r.Sink, r.Writes, r.Ops = sinkName, len(wl.Writes), wl.Ops
		if r.Seconds > 0 {
			r.WritesPerSec = float64(r.Writes) / r.Seconds
		}
		if r.Correct, r.Differences, err = Check(ctx, store, wl); err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

// WriteTable prints the results as an aligned table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
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
	return tw.Flush()
}
