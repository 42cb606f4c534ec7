package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/app"
)

const routeAbout = `
The graph writer's transformer: consumes domain events from Kafka, maps them with
the rules of --mapping (docs/mapping.md), and produces each write to the
topic <topic_prefix><RuleName> (topic_prefix from the mapping file, default
"graph.write."; --topic-prefix overrides) on the brokers of --to, keyed by
the write's key — where "graft run --source kafka://…/graph\.write\..*"
picks them up.

Delivery: the events of each poll are mapped and produced (idempotent,
acks=all) and their dead letters stored before the source offsets move past
them; a crash replays from the last commit, and the consumer's writes are
idempotent. Events no rule matches are dead letters of class "unmapped"
(or skipped: "unmapped: skip" in the mapping file); events a rule fails on
are dead letters naming the rule and the field. Dead letters go to
<data-dir>/deadletters.ndjson, or to the source's dlq= topic.

TLS and SASL come from the kafka: section of the config file, for both
sides. SIGINT or SIGTERM: finishes the current poll, commits, exits 0.`

func runRoute(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f sinkFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	var to, prefix string
	fs := newFlagSet("route", "graft route --mapping FILE --source kafka://BROKERS/TOPICS?group=NAME --to kafka://BROKERS [flags]", routeAbout)
	fs.StringVar(&f.configPath, "config", f.configPath, "config `file` (default ./graft.yaml when it exists): the kafka: section, limits:")
	fs.StringVar(&f.c.DataDir, "data-dir", f.c.DataDir, "`directory` for the dead-letter file")
	fs.StringVar(&f.c.Mapping, "mapping", f.c.Mapping, "mapping rules `file` (required)")
	fs.StringVar(&f.c.Source, "source", f.c.Source, "the events: kafka://BROKER[,BROKER]/TOPICS?group=NAME[&dlq=…] (required)")
	fs.StringVar(&to, "to", "", "where writes go: kafka://BROKER[,BROKER] (required)")
	fs.StringVar(&prefix, "topic-prefix", "", "topic of a rule's writes: prefix + rule name (default the mapping file's topic_prefix)")
	fs.IntVar(&f.c.Limits.MaxRecordBytes, "max-record-bytes", f.c.Limits.MaxRecordBytes, "largest event accepted, in `bytes`")
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	switch {
	case f.c.Mapping == "":
		return usagef("--mapping FILE is required")
	case !strings.HasPrefix(f.c.Source, "kafka://"):
		return usagef("--source kafka://BROKERS/TOPICS?group=NAME is required")
	case !strings.HasPrefix(to, "kafka://"):
		return usagef("--to kafka://BROKERS is required")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := app.OpenRouter(ctx, f.c, to, prefix, log)
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Fprintf(stderr, "graft route: %s → %s<Rule> on %s\n", f.c.Source, r.Prefix(), to)
	err = r.Run(ctx)
	events, routed, skipped, dead := r.Counts()
	fmt.Fprintf(stderr, "graft route: %d events: %d routed, %d skipped, %d dead letters\n", events, routed, skipped, dead)
	if errors.Is(err, context.Canceled) || errors.Is(err, graft.ErrClosed) {
		return nil
	}
	return err
}
