package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/graftdb/graft/app"
	"github.com/graftdb/graft/config"
)

const defaultListen = config.DefaultListen

const runAbout = `
Runs Graft as a service. With no flags everything is embedded in the data
directory: a JetStream server (file-backed, in <data-dir>/jetstream) as the
stream, the engine consuming it into the embedded graph store, and the HTTP
API on ` + defaultListen + `:

  POST /v1/writes                 NDJSON or a JSON array of writes; 202 once
                                  the stream has stored every valid one
                                  (?wait=committed: 200 once committed)
  GET  /v1/vertices/{id}          a vertex (404 if unknown)
  GET  /v1/vertices/{id}/edges    ?direction=out|in|both&label=...
  GET  /v1/status                 accepted, committed, dead_lettered, pending, source_lag
  GET  /metrics                   Prometheus metrics (docs/operations.md)
  GET  /healthz, /readyz          liveness; readiness (false while the sink is unreachable)

--source selects another source:
  nats://HOST:PORT/STREAM/SUBJECT  an external JetStream (stream created if absent)
  kafka://BROKER[,BROKER]/TOPICS?group=NAME[&...]
                                   Kafka topics (a list, or a regex) in a consumer group;
                                   TLS and SASL from the kafka: section of the config file.
                                   Parameters:
                                     start=committed|earliest|latest|RFC3339  where a group
                                       with no committed offset starts (default earliest)
                                     balancer=co-partitioned  partition n of every topic
                                       goes to one member (default cooperative-sticky)
                                     dlq=TOPIC or dlq=kafka://BROKERS/TOPIC  dead letters
                                       go to this topic (original key and value, error
                                       headers) instead of <data-dir>/deadletters.ndjson
                                     produce=TOPIC  where POST /v1/writes produces (default:
                                       the source's topic when it names exactly one;
                                       otherwise ingest is disabled)
  kinesis://STREAM?region=R[&...]  an Amazon Kinesis stream; leases and checkpoints in DynamoDB,
                                   shared by every instance on the stream (docs/kinesis.md);
                                   POST /v1/writes puts on the stream. Parameters:
                                     start=trim_horizon|latest|RFC3339  where a shard with no
                                       checkpoint starts (default trim_horizon)
                                     table=T  lease table (default graft-STREAM, created if missing)
                                     worker=NAME  this instance in the lease table (default
                                       host-pid-random)
                                     lease_ttl=10s  a lease not renewed this long is taken
                                     checkpoint_interval=1s  how often shards that moved are
                                       checkpointed
                                     max_records=1000  per GetRecords
                                     endpoint=URL, dynamodb_endpoint=URL  emulators, VPC endpoints
  file:PATH                        NDJSON writes from a file (ingest API disabled)

The write cache (--cache) is auto by default: in-process with one instance's
sources, off with kafka:// and kinesis://, whose partitions move between the
instances sharing them (a fact one caches can be changed by another, and a
write it eliminated would be lost). Give those a shared cache with
--cache redis://HOST:PORT/DB; --cache memory is refused with them.

SIGINT or SIGTERM stops fetching, finishes the writes in flight (within
--drain-timeout), acknowledges what committed and exits 0.`

type runFlags struct {
	engineFlags
}

func (f *runFlags) register(fs *flagSet) {
	f.engineFlags.register(fs)
	c := &f.c
	if c.Auth.Token == "" {
		c.Auth.Token = os.Getenv("GRAFT_AUTH_TOKEN")
	}
	fs.StringVar(&c.Listen, "listen", c.Listen, "HTTP API `address`")
	fs.StringVar(&c.Source, "source", c.Source, "source `URL`: "+config.Forms(config.Sources)+"; default the embedded JetStream")
	fs.StringVar(&c.Auth.Token, "auth-token", c.Auth.Token, "bearer `token` the API requires (auth.token; default $GRAFT_AUTH_TOKEN; empty: none)")
	fs.Int64Var(&c.HTTP.MaxBodyBytes, "max-body-bytes", c.HTTP.MaxBodyBytes, "largest POST /v1/writes body, in `bytes` (413 above)")
	fs.BoolVar(&c.Stream.SyncAlways, "sync-always", c.Stream.SyncAlways, "embedded stream: fsync every accepted record before answering 202 (survives power loss; slower)")
}

func runRun(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	var f runFlags
	if err := f.loadConfig(args); err != nil {
		return err
	}
	fs := newFlagSet("run", "graft run [flags]", runAbout)
	f.register(fs)
	pos, err := fs.parse(args, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc, err := app.Start(ctx, f.c, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "graft: serving http://%s (sink %s, source %s, write cache %s)\n", svc.Addr(), config.Redact(f.c.SinkURL()), svc.SourceName(), config.Redact(f.c.CacheUse()))
	return svc.Wait(ctx)
}
