package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/config"
)

// Service is a running graft: source, pipeline, HTTP API.
type Service struct {
	Pipeline *Pipeline
	API      *api.Server

	src        *source
	closers    []func() // in the order opened
	http       *http.Server
	addr       string
	engineDone chan error
	cancelRun  context.CancelFunc
	log        *slog.Logger
}

// Start opens everything c names and starts the engine and the HTTP API.
// This is what graft run and graft demo run: read it top to bottom to see
// how a service starts.
func Start(ctx context.Context, c config.Config, log *slog.Logger) (_ *Service, err error) {
	if _, err := EngineConfig(c, log); err != nil {
		return nil, err // before anything is opened
	}
	svc := &Service{log: log}
	defer func() {
		if err != nil {
			svc.close()
		}
	}()
	// 1. Dead letters go to a Kafka topic when the source names one, else
	// to the data directory's file.
	var letters graft.DeadLetters
	if dt, err := DeadLetterTopic(c); err != nil {
		return nil, err
	} else if dt != nil {
		svc.closers = append(svc.closers, func() { dt.Close() })
		letters = dt
	}
	// 2. The sink, the write cache, the locker and the engine.
	p, err := OpenPipeline(ctx, c, log, letters)
	if err != nil {
		return nil, err
	}
	svc.closers = append(svc.closers, p.Close)
	svc.Pipeline = p
	// 3. The source, and what HTTP ingest publishes to.
	committed := api.NewWatermark()
	src, err := openSource(ctx, c, committed, log)
	if err != nil {
		return nil, err
	}
	svc.closers = append(svc.closers, src.close)
	svc.src = src
	waiter := src.waiter
	if waiter == nil {
		waiter = committed
	}
	// 4. The HTTP API.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(p.Engine.Collectors()...)
	reg.MustRegister(src.metrics...)
	maxInvalid := c.HTTP.MaxInvalid
	if maxInvalid == 0 {
		maxInvalid = -1 // none
	}
	svc.API = api.New(api.Config{
		Publisher: src.publisher, Reader: p.Sink, Pinger: p.Sink, DLQ: p.Letters, Engine: p.Engine, Committed: waiter,
		Lag: src.lag, Limits: p.Engine.Config().Limits, Decode: p.Engine.Config().Decode, MaxBody: c.HTTP.MaxBodyBytes, Token: c.Auth.Token, Registry: reg, Log: log,
		MaxInvalid: maxInvalid, Hosts: allowedHosts(c), Origins: c.HTTP.AllowedOrigins,
	})
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	svc.addr = ln.Addr().String()
	// Bounded: connections at once, the time to read a request (a body
	// that never ends), and idle keep-alives. Writing is not bounded here:
	// ?wait=committed answers when the writes commit (api.Config.WaitTimeout).
	ln = netutil.LimitListener(ln, c.HTTP.MaxConnections)
	svc.http = &http.Server{Handler: svc.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: c.HTTP.ReadTimeout, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := svc.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	// 5. The engine, reading the source through the watermark that
	// ?wait=committed waits on.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	svc.cancelRun = cancel
	svc.engineDone = make(chan error, 1)
	watched := committed.Watch(src.Source)
	go func() { svc.engineDone <- p.Engine.Run(runCtx, watched) }()
	return svc, nil
}

// allowedHosts are the Host headers the API answers: on a loopback listen
// address only loopback names (a page that rebinds its own name to
// 127.0.0.1 sends that name), plus http.allowed_hosts; elsewhere
// http.allowed_hosts, and any host when it is empty.
func allowedHosts(c config.Config) []string {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return c.HTTP.AllowedHosts
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return append([]string{"localhost", "127.0.0.1", "::1", host}, c.HTTP.AllowedHosts...)
	}
	return c.HTTP.AllowedHosts
}

// Addr is the address the HTTP API listens on.
func (s *Service) Addr() string { return s.addr }

// SourceName names the source, for messages.
func (s *Service) SourceName() string { return s.src.name }

// Stop asks the engine to stop (drain and return); Wait then returns.
func (s *Service) Stop() { s.cancelRun() }

// Wait runs until ctx is cancelled (SIGINT/SIGTERM), Stop is called, or the
// engine stops on its own (a finite source ran out, or a fatal error), then
// shuts down in order: HTTP, engine drain, source, pipeline.
func (s *Service) Wait(ctx context.Context) error {
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
	s.close()
	return err
}

func (s *Service) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
