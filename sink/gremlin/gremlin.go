// Package gremlin is a Sink writing to Gremlin servers — Amazon Neptune,
// JanusGraph, Gremlin Server with TinkerGraph — through the official driver
// (gremlin-go). A batch is one traversal, so one request and, on Neptune,
// one transaction; it is built as bytecode, values as arguments.
//
// Neptune IAM: iam=true signs every connection with SigV4 (iam.go). Reads
// (reader.go) go to the reader endpoint when reader= names one. See
// docs/gremlin.md.
package gremlin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
)

// Config is what a gremlin+ws(s):// URL says.
type Config struct {
	URL        string // ws:// or wss:// for the driver
	Dialect    Dialect
	IDProperty string // JanusGraph dialect: the property holding Graft's ids
	MaxRecords int    // Neptune "records" per request: a label or a property counts one
	MaxSteps   int    // steps per traversal
	MaxWrites  int
	// Concurrency is the number of batches in flight (connections).
	Concurrency int
	// Timeout bounds one request.
	Timeout time.Duration
	// InsecureSkipVerify: TLS without checking the certificate (tests).
	InsecureSkipVerify bool
	// IAM signs every connection with SigV4 (Neptune IAM authentication);
	// Region defaults to the one in the host name.
	IAM    bool
	Region string
	// Logger receives what a human should see (IAM signing failures).
	Logger *slog.Logger
	// ReaderURL is the endpoint reads go to (Neptune's reader endpoint);
	// empty: the writer's.
	ReaderURL string
	// Source is the traversal source the server binds ("g"); a server
	// with several graphs binds one per graph.
	Source string
	// UnknownRetries: after this many unclassified server errors in a row
	// (no success between them), the next one is permanent — the engine
	// then isolates and dead-letters the write instead of retrying forever.
	UnknownRetries int
}

// ParseURL reads gremlin+wss://HOST:PORT/gremlin[?dialect=neptune|janusgraph|tinkergraph
// &records=200&steps=1500&writes=200&concurrency=4&timeout=30s&id_property=graft_id
// &iam=true&region=us-east-1&source=g]
// (gremlin+ws:// for a plain local server).
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "gremlin+ws" && u.Scheme != "gremlin+wss") || u.Host == "" {
		return Config{}, fmt.Errorf("sink %q: want gremlin+wss://HOST:PORT/gremlin (gremlin+ws:// without TLS)", raw)
	}
	c := Config{Dialect: Neptune, IDProperty: DefaultIDProperty, MaxRecords: 200, MaxSteps: 1500, MaxWrites: 200, Concurrency: 4, Timeout: 30 * time.Second,
		UnknownRetries: 10, Source: "g"}
	q := u.Query()
	num := func(name string, dst *int) error {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("sink %q: %s=%q: a positive integer", raw, name, v)
			}
			*dst = n
		}
		return nil
	}
	for name := range q {
		switch name {
		case "dialect":
			switch d := Dialect(q.Get(name)); d {
			case Neptune, JanusGraph, TinkerGraph:
				c.Dialect = d
			default:
				return Config{}, fmt.Errorf("sink %q: dialect=%q: neptune, janusgraph or tinkergraph", raw, d)
			}
		case "records":
			err = num(name, &c.MaxRecords)
		case "steps":
			err = num(name, &c.MaxSteps)
		case "writes":
			err = num(name, &c.MaxWrites)
		case "concurrency":
			err = num(name, &c.Concurrency)
		case "unknown_retries":
			err = num(name, &c.UnknownRetries)
		case "timeout":
			c.Timeout, err = time.ParseDuration(q.Get(name))
			if err != nil || c.Timeout <= 0 {
				err = fmt.Errorf("sink %q: timeout=%q: a positive duration", raw, q.Get(name))
			}
		case "id_property":
			if c.IDProperty = q.Get(name); c.IDProperty == "" {
				err = fmt.Errorf("sink %q: id_property is empty", raw)
			}
		case "insecure_skip_verify":
			c.InsecureSkipVerify = q.Get(name) == "true"
		case "iam":
			switch q.Get(name) {
			case "true":
				c.IAM = true
			case "false":
			default:
				err = fmt.Errorf("sink %q: iam=%q: true or false", raw, q.Get(name))
			}
		case "region":
			c.Region = q.Get(name)
		case "source":
			if c.Source = q.Get(name); c.Source == "" {
				err = fmt.Errorf("sink %q: source is empty (the traversal source, e.g. g)", raw)
			}
		case "reader":
			// An unescaped '+' in a query reads as a space.
			r, perr := url.Parse(strings.Replace(q.Get(name), "gremlin ws", "gremlin+ws", 1))
			if perr != nil || (r.Scheme != "gremlin+ws" && r.Scheme != "gremlin+wss") || r.Host == "" {
				err = fmt.Errorf("sink %q: reader=%q: gremlin+wss://HOST:PORT/gremlin", raw, q.Get(name))
				break
			}
			r.Scheme = strings.TrimPrefix(r.Scheme, "gremlin+")
			c.ReaderURL = r.String()
		default:
			err = fmt.Errorf("sink %q: unknown parameter %q (dialect, records, steps, writes, concurrency, timeout, id_property, iam, region, reader, source, unknown_retries)", raw, name)
		}
		if err != nil {
			return Config{}, err
		}
	}
	u.Scheme = strings.TrimPrefix(u.Scheme, "gremlin+")
	u.RawQuery = ""
	c.URL = u.String()
	return c, nil
}

// Store is the sink.
type Store struct {
	cfg       Config
	conn      *gremlingo.DriverRemoteConnection
	g         *gremlingo.GraphTraversalSource
	readConn  *gremlingo.DriverRemoteConnection // the reader endpoint's, or conn
	reader    *gremlingo.GraphTraversalSource
	readerURL string
	b         builder
	unknown   atomic.Int64 // unclassified errors in a row
	versions  sync.Once    // the warning that versions are not guarded
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// Open connects; the driver connects lazily, so Ping says whether the
// server answers.
func Open(cfg Config) (*Store, error) {
	var auth gremlingo.AuthInfoProvider
	if cfg.IAM {
		a, err := newIAMAuth(context.Background(), cfg.URL, cfg.Region, cfg.Logger)
		if err != nil {
			return nil, graft.NewError(graft.Fatal, fmt.Errorf("sink %s: %w", cfg.URL, err))
		}
		auth = a.provider()
	}
	conn, err := connect(cfg, cfg.URL, auth)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, conn: conn, g: gremlingo.Traversal_().WithRemote(conn), readConn: conn, readerURL: cfg.URL,
		b: builder{dialect: cfg.Dialect, idProp: cfg.IDProperty}}
	if cfg.ReaderURL != "" {
		rauth := auth
		if cfg.IAM { // a reader endpoint is another host: its own signature
			a, err := newIAMAuth(context.Background(), cfg.ReaderURL, cfg.Region, cfg.Logger)
			if err != nil {
				conn.Close()
				return nil, graft.NewError(graft.Fatal, fmt.Errorf("sink reader %s: %w", cfg.ReaderURL, err))
			}
			rauth = a.provider()
		}
		if s.readConn, err = connect(cfg, cfg.ReaderURL, rauth); err != nil {
			conn.Close()
			return nil, err
		}
		s.readerURL = cfg.ReaderURL
	}
	s.reader = gremlingo.Traversal_().WithRemote(s.readConn)
	return s, nil
}

func connect(cfg Config, url string, auth gremlingo.AuthInfoProvider) (*gremlingo.DriverRemoteConnection, error) {
	conn, err := gremlingo.NewDriverRemoteConnection(url, func(s *gremlingo.DriverRemoteConnectionSettings) {
		if auth != nil {
			s.AuthInfo = auth
		}
		s.TraversalSource = cfg.Source
		s.LogVerbosity = gremlingo.Off
		s.ConnectionTimeout = 10 * time.Second
		s.MaximumConcurrentConnections = cfg.Concurrency
		s.NewConnectionThreshold = 1
		if strings.HasPrefix(url, "wss://") {
			s.TlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, for tests
		}
	})
	if err != nil {
		if strings.Contains(err.Error(), markerNoConnection) {
			// gremlin-go says "E0104: no successful connections could be
			// made: dial tcp HOST:PORT: connect: connection refused".
			why := err.Error()
			if i := strings.LastIndex(why, ": "); i >= 0 {
				why = why[i+2:]
			}
			return nil, graft.NewError(graft.Reconnect, fmt.Errorf("cannot reach sink gremlin+%s: %s", url, why))
		}
		return nil, fmt.Errorf("sink %s: %w", url, classify(err))
	}
	return conn, nil
}

// Endpoint names the server.
func (s *Store) Endpoint() string { return s.cfg.URL }

// Limits implements graft.Sink: a unit is a Neptune record.
func (s *Store) Limits() graft.SinkLimits {
	return graft.SinkLimits{MaxUnits: s.cfg.MaxRecords, MaxWrites: s.cfg.MaxWrites, MaxBytes: 1 << 20, Concurrency: s.cfg.Concurrency}
}

// Apply implements graft.Sink: the batch as one traversal.
func (s *Store) Apply(ctx context.Context, b *graft.Batch) error {
	for _, w := range b.Writes {
		if w.Version != 0 {
			s.versions.Do(func() {
				log := s.cfg.Logger
				if log == nil {
					log = slog.Default()
				}
				log.Warn("gremlin: writes carry versions, which this sink does not guard yet: they apply in the order they come (docs/DESIGN.md, \"Versions\")", "sink", s.cfg.URL)
			})
			break
		}
	}
	t := s.b.batch(b.Writes)
	if n := t.steps(); n > s.cfg.MaxSteps {
		return graft.NewError(graft.TooLarge, fmt.Errorf("%d steps, over the limit of %d (steps=)", n, s.cfg.MaxSteps))
	}
	err := s.bound(s.submit(ctx, t))
	if c := graft.ClassOf(err); (c == graft.MissingEndpoint || c == graft.Permanent) && graft.IndexOf(err) < 0 {
		i := attribute(b.Writes, err.Error())
		if i < 0 && len(b.Writes) == 1 {
			i = 0 // one write: it is the one
		}
		if i >= 0 {
			return graft.Errorf(c, i, "write %d: %w", i, err)
		}
	}
	return err
}

// bound counts unclassified errors in a row and makes the one past
// UnknownRetries permanent; any other outcome resets the count.
func (s *Store) bound(err error) error {
	if !errors.Is(err, errUnknown) {
		s.unknown.Store(0)
		return err
	}
	if n := s.unknown.Add(1); n > int64(s.cfg.UnknownRetries) {
		s.unknown.Store(0)
		return graft.NewError(graft.Permanent, fmt.Errorf("%d unclassified errors in a row: %w", n, err))
	}
	return err
}

func (s *Store) submit(ctx context.Context, t traversal) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// A remote traversal starting at inject, then the rest of the steps.
		gt := s.g.Inject(t[0].args...)
		t[1:].appendTo(gt.Bytecode)
		rs, err := gt.GetResultSet()
		if err != nil {
			done <- err
			return
		}
		_, err = rs.All()
		if err == nil {
			err = rs.GetError()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return classify(fmt.Errorf("%s: %w", s.cfg.URL, err))
		}
		return nil
	case <-ctx.Done():
		// The request may still commit: the engine treats a timeout as
		// in doubt and retries (writes are idempotent).
		return graft.NewError(graft.Transient, fmt.Errorf("%s: no answer: %w", s.cfg.URL, ctx.Err()))
	}
}

// Reset drops every vertex (and so every edge) of the graph, 10,000 at a
// time so that no single traversal outlives a server's query timeout: graft
// bench empties the graph before each strategy. It is never called on a
// graph Graft serves.
func (s *Store) Reset(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := s.g.V().Limit(10_000).SideEffect(gremlingo.T__.Drop()).Count().ToList() // not Iterate: see docs/gremlin.md
		if err != nil {
			return classify(fmt.Errorf("%s: emptying the graph: %w", s.cfg.URL, err))
		}
		if n, err := res[0].GetInt64(); err != nil || n == 0 {
			return err
		}
	}
}

// Ping implements graft.Sink: a trivial traversal.
func (s *Store) Ping(ctx context.Context) error {
	return s.submit(ctx, traversal{step{name: "inject", args: []any{int64(1)}}})
}

// Close implements graft.Sink.
func (s *Store) Close() error {
	if s.readConn != s.conn {
		s.readConn.Close()
	}
	s.conn.Close()
	return nil
}
