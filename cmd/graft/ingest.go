package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/source/file"
)

// engineFlags tune the engine, for every command that runs it.
type engineFlags struct {
	sinkFlags
	json  bool
	quiet bool

	cpuProfile string
}

func (f *engineFlags) register(fs *flagSet) {
	f.sinkFlags.register(fs)
	c := &f.c
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object on stdout")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress and no summary on stderr")
	fs.StringVar(&c.Mapping, "mapping", c.Mapping, "mapping rules `file`: records are domain events, mapped to writes (docs/mapping.md)")
	fs.StringVar(&c.DeadLetters.Policy, "policy", c.DeadLetters.Policy, "after a dead letter: `continue` with the key's later writes, or quarantine them")
	fs.IntVar(&c.Limits.MaxRecordBytes, "max-record-bytes", c.Limits.MaxRecordBytes, "largest record accepted, in `bytes`; larger ones are dead-lettered")
	fs.IntVar(&c.Limits.MaxOps, "max-ops", c.Limits.MaxOps, "most ops in one write")
	fs.DurationVar(&c.Limits.MaxRecordAge, "max-record-age", c.Limits.MaxRecordAge, "dead-letter (class expired) records the source timestamped longer ago than this (0: no limit)")
	fs.IntVar(&c.Batch.MaxWrites, "batch-writes", c.Batch.MaxWrites, "most writes in one batch (0: the sink's limit)")
	fs.IntVar(&c.Batch.MaxUnits, "batch-units", c.Batch.MaxUnits, "most sink units (elements, properties, targets) in one batch (0: the sink's limit)")
	fs.DurationVar(&c.Batch.Linger, "linger", c.Batch.Linger, "how long a partial batch waits for more writes")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "batches in flight at once (0: the sink's: 2 for sqlite, 8 for postgres)")
	fs.IntVar(&c.MaxInflightRecords, "max-inflight", c.MaxInflightRecords, "records read but not yet committed; reading pauses at this bound")
	fs.StringVar(&c.Versions, "versions", c.Versions, "producer: a write's version is its producer's, if any; derive: a write without one gets its record's (a file's line, the stream's sequence, a Kafka record's timestamp and offset), and sinks that guard versions apply writes as if in version order (docs/DESIGN.md, \"Versions\")")
	fs.StringVar(&c.Cache.Use, "cache", c.Cache.Use, "write cache: auto (memory; off with a kafka:// or kinesis:// source), memory (in-process), redis://[USER:PASSWORD@]HOST:PORT/DB[?prefix=graft:&ttl=24h] (shared by every graft process of the graph, memory in front; rediss:// for TLS), or off")
	fs.StringVar(&c.Lock.Use, "lock", c.Lock.Use, "locker: redis://[USER:PASSWORD@]HOST:PORT/DB[?prefix=graft:] gives every batch a lease on its keys (fencing tokens checked by the sink); for deployments where one key can reach several graft processes")
	fs.DurationVar(&c.Lock.TTL, "lock-ttl", c.Lock.TTL, "lease time to live, renewed every third of it while a batch runs")
	fs.IntVar(&c.Cache.Size, "cache-size", c.Cache.Size, "elements the in-process write cache remembers (about 1.5 KB of memory each); -1 disables write elimination")
	fs.DurationVar(&c.Retry.ParkFor, "park-for", c.Retry.ParkFor, "how long a write whose edge has a missing endpoint is retried before it is dead-lettered")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "on SIGINT/SIGTERM, how long to finish in-flight writes")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile to `file` (for developers)")
}

// warnLog is the log of the commands that are not services: warnings and
// errors on stderr.
func warnLog(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

const ingestAbout = `
Reads writes in the wire format (docs/wire-format.md), one JSON object per
line, from FILE or from stdin ("-" or no argument), and runs them through the
full engine into the sink: per-key order, conflict-free batches, write
elimination, retries, dead letters. Blank lines are skipped.

Exits 0 once every write is committed or dead-lettered (dead letters go to
<data-dir>/deadletters.ndjson; see "graft dlq"). Prints a summary on stderr,
and with --json as one JSON object on stdout. Shows progress when stderr is a
terminal. On SIGINT or SIGTERM it stops reading, finishes the writes in
flight and exits 0.

Exit codes: 0 done, 1 error (sink unreachable, unreadable input),
2 bad usage, 3 fatal sink error.`

func runIngest(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f engineFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("ingest", "graft ingest [flags] [FILE|-]", ingestAbout)
	f.register(fs)
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if _, err := app.EngineConfig(f.c, nil); err != nil {
		return err
	}
	input, err := openInput(pos, stdin)
	if err != nil {
		return err
	}
	defer input.Close()
	in, name, size := input.r, input.name, input.size
	p, err := app.OpenPipeline(ctx, f.c, warnLog(stderr), nil)
	if err != nil {
		return err
	}
	defer p.Close()
	src := file.New(name, in, f.c.Limits.MaxRecordBytes)
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	stopProgress := startProgress(stderr, f.quiet, func() string {
		return progressLine(p.Engine.Stats().Snapshot(), time.Since(start), src.BytesRead(), size)
	})
	err = p.Engine.Run(ctx, src)
	stopProgress()
	sum := summarize(p.Engine.Stats().Snapshot(), time.Since(start))
	if !f.quiet {
		fmt.Fprintln(stderr, sum.line())
		if sum.DeadLetters > 0 {
			fmt.Fprintf(stderr, "%d dead letters in %s: see 'graft dlq list --data-dir %s'\n", sum.DeadLetters, p.DLQ.Path(), f.c.DataDir)
		}
	}
	if f.json {
		b, _ := json.Marshal(sum)
		fmt.Fprintln(stdout, string(b))
	}
	if errors.Is(err, engine.ErrDrainTimeout) {
		return fmt.Errorf("stopped before every write was committed: %w", err)
	}
	return err
}

// summary is the report of a run: the engine's counters under their
// summary keys (engine.Counters), then the time and rate. It is the --json
// output of graft ingest and graft dlq redrive.
type summary struct {
	engine.Snapshot
	Seconds      float64
	WritesPerSec float64
}

func summarize(s engine.Snapshot, d time.Duration) summary {
	sum := summary{Snapshot: s, Seconds: d.Seconds()}
	if sum.Seconds > 0 {
		sum.WritesPerSec = float64(s.Records) / sum.Seconds
	}
	return sum
}

// MarshalJSON writes the counters in table order, then seconds and
// writes_per_second.
func (s summary) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for _, kv := range s.Summary() {
		b = strconv.AppendQuote(b, kv.Key)
		b = append(b, ':')
		b = strconv.AppendInt(b, kv.Value, 10)
		b = append(b, ',')
	}
	b = fmt.Appendf(b, `"seconds":%s,"writes_per_second":%s}`, strconv.FormatFloat(s.Seconds, 'f', -1, 64), strconv.FormatFloat(s.WritesPerSec, 'f', -1, 64))
	return b, nil
}

func (s summary) line() string {
	return fmt.Sprintf("%d writes (%d ops): %d committed, %d dead letters; %d ops eliminated, %d coalesced; %d batches; %.2fs, %.0f writes/s",
		s.Records, s.Ops, s.Committed, s.DeadLetters, s.Eliminated, s.Coalesced, s.Batches, s.Seconds, s.WritesPerSec)
}

var _ graft.Source = (*file.Source)(nil)
