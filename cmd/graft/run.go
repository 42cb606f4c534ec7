package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/source/file"
	"github.com/graftdb/graft/source/jetstream"
	"github.com/graftdb/graft/source/kafka"
	"github.com/graftdb/graft/source/kinesis"
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
                                   Several instances: --cache redis://... or --cache off.
  file:PATH                        NDJSON writes from a file (ingest API disabled)

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
	fs.StringVar(&c.Source, "source", c.Source, "source `URL`: nats://HOST:PORT/STREAM/SUBJECT, kafka://BROKERS/TOPICS?group=NAME or file:PATH; default the embedded JetStream")
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
	if _, err := f.config(stderr); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	svc, err := startService(ctx, &f, stderr, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "graft: serving http://%s (sink %s, source %s)\n", svc.addr, f.sinkURL(), svc.sourceName)
	return svc.wait(ctx)
}

// service is a running graft: source, engine, HTTP API.
type service struct {
	p          *pipeline
	src        graft.Source
	closeSrc   func()
	api        *api.Server
	http       *http.Server
	addr       string
	sourceName string
	engineDone chan error
	cancelRun  context.CancelFunc
	log        *slog.Logger
}

func startService(ctx context.Context, f *runFlags, stderr io.Writer, log *slog.Logger) (*service, error) {
	svc := &service{log: log}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var (
		publisher     api.Publisher
		waiter        api.Waiter
		lag           func(context.Context) (int64, error)
		sourceMetrics []prometheus.Collector
		letters       engine.DeadLetters
		kc            kafka.Config
		committed     = api.NewWatermark()
	)
	if strings.HasPrefix(f.c.Source, "kafka://") {
		var err error
		if kc, err = kafka.ParseURL(f.c.Source); err != nil {
			return nil, usagef("--source: %v", err)
		}
		kc.Security = f.c.Kafka
		if kc.DeadLetters != "" {
			t, _ := kc.DeadLetterTarget()
			dt, err := kafka.NewDeadLetterTopic(t, kc.Security)
			if err != nil {
				return nil, fmt.Errorf("dead-letter topic %s: %w", t, err)
			}
			closers = append(closers, func() { dt.Close() })
			letters = dt
		}
	}
	p, err := openPipeline(ctx, &f.engineFlags, stderr, letters)
	if err != nil {
		closeAll()
		return nil, err
	}
	svc.p = p
	fail := func(err error) (*service, error) {
		closeAll()
		p.close()
		return nil, err
	}
	switch {
	case f.c.Source == "":
		emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Dir: filepath.Join(f.c.DataDir, "jetstream"), SyncAlways: f.c.Stream.SyncAlways})
		if err != nil {
			return fail(err)
		}
		closers = append(closers, emb.Close)
		js, pub, err := openJetStream(ctx, emb.Conn(), jetstream.DefaultConfig(), log)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { js.Close() })
		svc.src, publisher, lag, svc.sourceName = js, pub, js.Lag, "embedded JetStream"
	case strings.HasPrefix(f.c.Source, "nats://"):
		u, err := url.Parse(f.c.Source)
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		if err != nil || len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return fail(usagef("--source %q: want nats://HOST:PORT/STREAM/SUBJECT", f.c.Source))
		}
		nc, err := nats.Connect("nats://"+u.Host, nats.Name("graft"), nats.MaxReconnects(-1))
		if err != nil {
			return fail(fmt.Errorf("cannot reach source %s: %w", f.c.Source, err))
		}
		closers = append(closers, nc.Close)
		cfg := jetstream.DefaultConfig()
		cfg.Stream, cfg.Subject = parts[0], parts[1]
		js, pub, err := openJetStream(ctx, nc, cfg, log)
		if err != nil {
			return fail(fmt.Errorf("source %s: %w", f.c.Source, err))
		}
		closers = append(closers, func() { js.Close() })
		svc.src, publisher, lag, svc.sourceName = js, pub, js.Lag, f.c.Source
	case strings.HasPrefix(f.c.Source, "kafka://"):
		ks, err := kafka.New(kc, log)
		if err != nil {
			return fail(fmt.Errorf("cannot reach source %s: %w", f.c.Source, err))
		}
		closers = append(closers, func() { ks.Close() })
		pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = ks.Ping(pingCtx)
		cancel()
		if err != nil {
			return fail(fmt.Errorf("cannot reach source %s: %w", f.c.Source, err))
		}
		group, err := kafka.NewGroup(kc.Brokers, kc.Group, kc.Security)
		if err != nil {
			return fail(fmt.Errorf("source %s: %w", f.c.Source, err))
		}
		closers = append(closers, group.Close)
		lag = group.Lag
		if t, ok := kc.ProduceTarget(); ok {
			prod, err := kafka.NewProducer(t, kc.Security)
			if err != nil {
				return fail(fmt.Errorf("ingest topic %s: %w", t, err))
			}
			closers = append(closers, prod.Close)
			publisher, waiter = prod, groupWaiter{local: committed, group: group}
		}
		svc.src, svc.sourceName = ks, f.c.Source
	case strings.HasPrefix(f.c.Source, "kinesis://"):
		kc, err := kinesis.ParseURL(f.c.Source)
		if err != nil {
			return fail(usagef("--source: %v", err))
		}
		ks, err := kinesis.New(ctx, kc, log)
		if err != nil {
			return fail(fmt.Errorf("cannot reach source %s: %w", f.c.Source, err))
		}
		closers = append(closers, func() { ks.Close() })
		pub, err := kinesis.NewPublisher(ctx, kc)
		if err != nil {
			return fail(fmt.Errorf("ingest stream %s: %w", f.c.Source, err))
		}
		// HTTP ingest puts on the stream; ?wait=committed waits for the
		// records' shards to be checkpointed past them, by this instance
		// or by the one holding the lease.
		publisher, waiter = pub, ks
		sourceMetrics = ks.Collectors()
		svc.src, lag, svc.sourceName = ks, ks.Lag, f.c.Source
	case strings.HasPrefix(f.c.Source, "file:"):
		path := strings.TrimPrefix(f.c.Source, "file:")
		fh, err := os.Open(path)
		if err != nil {
			return fail(fmt.Errorf("--source: %w", err))
		}
		closers = append(closers, func() { fh.Close() })
		svc.src, svc.sourceName = file.New(path, fh, f.c.Engine().Limits.MaxRecordBytes), f.c.Source
	default:
		return fail(usagef("--source %q: unknown scheme (nats://HOST:PORT/STREAM/SUBJECT, kafka://BROKERS/TOPICS?group=NAME, kinesis://STREAM?region=R or file:PATH)", f.c.Source))
	}
	svc.closeSrc = closeAll
	if shared := strings.HasPrefix(f.c.Source, "kafka://") || strings.HasPrefix(f.c.Source, "kinesis://"); shared && f.c.Cache.Use == "memory" {
		// Partitions and shards move between the instances of a group: a
		// fact this process cached may have been changed by another since.
		log.Warn("the in-process write cache assumes this process is the graph's only writer; when several instances share this source, run them with --cache redis://… (shared) or --cache off (docs/cache.md)")
	}
	if waiter == nil {
		waiter = committed
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(p.eng.Collectors()...)
	reg.MustRegister(sourceMetrics...)
	svc.api = api.New(api.Config{
		Publisher: publisher, Reader: p.sink, Pinger: p.sink, DLQ: p.letters, Engine: p.eng, Committed: waiter,
		Lag: lag, Limits: f.c.Engine().Limits, Decode: p.eng.Config().Decode, MaxBody: f.c.HTTP.MaxBodyBytes, Token: f.c.Auth.Token, Registry: reg, Log: log,
	})
	ln, err := net.Listen("tcp", f.c.Listen)
	if err != nil {
		return fail(fmt.Errorf("--listen %s: %w", f.c.Listen, err))
	}
	svc.addr = ln.Addr().String()
	svc.http = &http.Server{Handler: svc.api, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := svc.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	svc.cancelRun = cancel
	svc.engineDone = make(chan error, 1)
	src := committed.Watch(svc.src)
	go func() { svc.engineDone <- p.eng.Run(runCtx, src) }()
	return svc, nil
}

// groupWaiter waits for positions of a Kafka topic to be committed: by this
// process's engine (fast), or by the group (a partition another member
// owns; its offsets are committed every second).
type groupWaiter struct {
	local *api.Watermark
	group *kafka.Group
}

func (w groupWaiter) Wait(ctx context.Context, positions []graft.Position) error {
	for {
		ok, advanced := w.local.Reached(positions)
		if ok {
			return nil
		}
		if ok, err := w.group.Committed(ctx, positions); err == nil && ok {
			return nil
		}
		select {
		case <-advanced:
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func openJetStream(ctx context.Context, nc *nats.Conn, cfg jetstream.Config, log *slog.Logger) (*jetstream.Source, *jetstream.Publisher, error) {
	pub, err := jetstream.NewPublisher(ctx, nc, cfg)
	if err != nil {
		return nil, nil, err
	}
	src, err := jetstream.New(ctx, nc, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	return src, pub, nil
}

// wait runs until ctx is cancelled (SIGINT/SIGTERM) or the engine stops on
// its own (a finite source ran out, or a fatal error), then shuts down in
// order: HTTP, engine drain, source, sink.
func (s *service) wait(ctx context.Context) error {
	var err error
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	select {
	case <-ctx.Done():
		s.log.Info("stopping: no new requests; draining the engine")
		s.http.Shutdown(shutCtx)
		s.cancelRun()
		err = <-s.engineDone
	case err = <-s.engineDone:
		s.http.Shutdown(shutCtx)
	}
	if s.closeSrc != nil {
		s.closeSrc()
	}
	s.p.close()
	return err
}
