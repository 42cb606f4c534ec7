// Package api is Graft's HTTP API: ingest (POST /v1/writes), the read API
// (vertices and their edges), status, Prometheus metrics, health and
// readiness.
package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
)

// Publisher stores records durably in the stream and returns their
// positions, in order. keys[i] is the write key of values[i].
type Publisher interface {
	Publish(ctx context.Context, values [][]byte, keys []string) ([]graft.Position, error)
}

// Fitter is a Publisher that can tell, before publishing, that a record
// can never be stored (over the stream's maximum message size): such a
// record is invalid, dead-lettered like one that does not decode, instead of
// failing its whole request again and again.
type Fitter interface {
	Fits(value []byte, key string) error
}

// Waiter blocks until every position is committed or dead-lettered.
type Waiter interface {
	Wait(ctx context.Context, positions []graft.Position) error
}

// Config wires the API to the rest of the process.
type Config struct {
	Publisher Publisher // nil: ingest is disabled (the source is not the stream)
	Reader    graft.Reader
	Pinger    interface{ Ping(context.Context) error }
	DLQ       graft.DeadLetters
	Engine    *engine.Engine
	Committed Waiter                               // for ?wait=committed
	Lag       func(context.Context) (int64, error) // records the source has not delivered
	Limits    graft.Limits
	// Decode, when set, checks a posted record as the engine will (mapping
	// rules: records are events); default the wire format's decoder.
	Decode   func(graft.Record) (*graft.Write, error)
	MaxBody  int64  // bytes of one request body
	Token    string // bearer token; empty: no authentication
	Registry *prometheus.Registry
	Log      *slog.Logger
	// WaitTimeout bounds ?wait=committed.
	WaitTimeout time.Duration
	// MaxInvalid is how many invalid records one request may hold (they
	// are dead-lettered and listed); a request with more is refused whole.
	// 0: DefaultMaxInvalid; negative: none.
	MaxInvalid int
	// Hosts are the Host headers answered (host names or host:port); empty:
	// any. Origins are the browser origins (scheme://host[:port]) whose
	// requests are served; a request with another Origin is refused.
	Hosts   []string
	Origins []string
}

// DefaultMaxInvalid is Config.MaxInvalid's default.
const DefaultMaxInvalid = 100

// Server serves the API.
type Server struct {
	cfg      Config
	mux      *http.ServeMux
	accepted atomic.Int64
	invalid  atomic.Int64
	requests *prometheus.CounterVec
}

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 32 << 20
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = time.Minute
	}
	switch {
	case cfg.MaxInvalid == 0:
		cfg.MaxInvalid = DefaultMaxInvalid
	case cfg.MaxInvalid < 0:
		cfg.MaxInvalid = 0
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "graft", Name: "http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.requests,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: "http_records_accepted_total",
				Help: "Records POST /v1/writes stored in the stream."}, func() float64 { return float64(s.accepted.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: "http_records_invalid_total",
				Help: "Records POST /v1/writes rejected and dead-lettered."}, func() float64 { return float64(s.invalid.Load()) }),
		)
	}
	s.route("POST /v1/writes", "writes", s.auth(s.postWrites))
	s.route("GET /v1/vertices/{id}", "vertex", s.auth(s.getVertex))
	s.route("GET /v1/vertices/{id}/edges", "edges", s.auth(s.getEdges))
	s.route("GET /v1/status", "status", s.auth(s.getStatus))
	s.route("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	s.route("GET /readyz", "readyz", s.getReady)
	if cfg.Registry != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	}
	return s
}

// ServeHTTP serves a request from an allowed host and origin.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.Hosts) > 0 && !hostAllowed(r.Host, s.cfg.Hosts) {
		// A page on another site that rebinds its name to this address
		// sends its own name as Host.
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not served here (http.allowed_hosts)", r.Host))
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !slices.Contains(s.cfg.Origins, o) {
		// Browsers name the page's origin on cross-site requests; other
		// clients send none.
		writeError(w, http.StatusForbidden, fmt.Sprintf("origin %q may not call this API (http.allowed_origins)", o))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hostAllowed matches a Host header against names (a name matches any
// port; a name:port only that port).
func hostAllowed(host string, allowed []string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	for _, a := range allowed {
		if strings.EqualFold(a, host) || strings.EqualFold(strings.Trim(a, "[]"), name) {
			return true
		}
	}
	return false
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (s *Server) route(pattern, name string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: 200}
		h(sw, r)
		s.requests.WithLabelValues(name, fmt.Sprint(sw.code)).Inc()
	})
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="graft"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <auth.token>)")
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// InvalidRecord reports one record of a request that was not accepted.
type InvalidRecord struct {
	Index int    `json:"index"` // 0-based position in the request (the line, for NDJSON, is index+1 counting non-blank lines)
	Error string `json:"error"`
}

// WritesResponse is the answer to POST /v1/writes.
type WritesResponse struct {
	Accepted  int             `json:"accepted"`
	Invalid   []InvalidRecord `json:"invalid"`
	Committed bool            `json:"committed,omitempty"` // with ?wait=committed
}

func (s *Server) postWrites(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Publisher == nil {
		writeError(w, http.StatusServiceUnavailable, "ingest is disabled: graft reads from another source (see --source)")
		return
	}
	wait := r.URL.Query().Get("wait")
	if wait != "" && wait != "committed" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("wait: %q is not supported (use wait=committed)", wait))
		return
	}
	if !ingestType(r.Header.Get("Content-Type")) {
		// Also what keeps a web page from posting here: a cross-site form
		// can send text/plain, not these without the browser asking first.
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type: send application/x-ndjson (one write a line) or application/json (a write, or an array of writes); with curl: -H 'Content-Type: application/x-ndjson' --data-binary @FILE")
		return
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: over the limit of %d bytes (http.max_body_bytes); split the writes over several requests", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	resp := WritesResponse{Invalid: []InvalidRecord{}}
	var valid [][]byte
	var keys []string
	var letters []*graft.Letter
	now := time.Now().UTC()
	fitter, _ := s.cfg.Publisher.(Fitter)
	n, err := eachRecord(buf.Bytes(), func(i int, rec []byte) error {
		var wr *graft.Write
		var err error
		if s.cfg.Decode != nil {
			wr, err = s.cfg.Decode(graft.Record{Value: rec, Pos: graft.Position{Partition: "http", Offset: int64(i)}})
		} else {
			wr, err = graft.Decode(rec, "", s.cfg.Limits)
		}
		invalid := func(err error) error {
			if len(letters) == s.cfg.MaxInvalid {
				return errTooManyInvalid
			}
			resp.Invalid = append(resp.Invalid, InvalidRecord{Index: i, Error: clip(err.Error(), 500)})
			letters = append(letters, graft.Rejected(graft.Position{Partition: "http", Offset: int64(i)}, err, rec, "", now))
			return nil
		}
		if err != nil {
			return invalid(err)
		}
		key := ""
		if wr != nil { // nil: an event the mapping skips
			key = wr.Key
		}
		if fitter != nil {
			if err := fitter.Fits(rec, key); err != nil {
				return invalid(err)
			}
		}
		valid, keys = append(valid, rec), append(keys, key)
		return nil
	})
	switch {
	case errors.Is(err, errTooManyInvalid):
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error":   fmt.Sprintf("more than %d invalid records in one request (http.max_invalid): nothing was accepted or dead-lettered; fix the producer, or split the request", s.cfg.MaxInvalid),
			"invalid": resp.Invalid,
		})
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	case n == 0:
		writeError(w, http.StatusBadRequest, "body: no writes (send NDJSON, one write a line, or a JSON array of writes)")
		return
	}
	if len(letters) > 0 {
		if err := s.cfg.DLQ.Append(r.Context(), letters); err != nil {
			writeError(w, http.StatusServiceUnavailable, "dead letters: "+err.Error())
			return
		}
		s.invalid.Add(int64(len(letters)))
	}
	var seqs []graft.Position
	if len(valid) > 0 {
		seqs, err = s.cfg.Publisher.Publish(r.Context(), valid, keys)
		if err != nil {
			s.cfg.Log.Warn("stream refused writes", "err", err)
			// Nothing of the request counts as accepted; the client retries
			// (the writes are idempotent), after a pause.
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "stream: "+err.Error()+" (retry: writes are idempotent)")
			return
		}
		s.accepted.Add(int64(len(seqs)))
	}
	resp.Accepted = len(seqs)
	if wait == "committed" && len(seqs) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WaitTimeout)
		defer cancel()
		if err := s.cfg.Committed.Wait(ctx, seqs); err != nil {
			writeJSON(w, http.StatusGatewayTimeout, map[string]any{"error": fmt.Sprintf("accepted but not committed within %v", s.cfg.WaitTimeout), "accepted": resp.Accepted, "invalid": resp.Invalid})
			return
		}
		resp.Committed = true
		writeJSON(w, http.StatusOK, resp)
		return
	}
	writeJSON(w, http.StatusAccepted, resp)
}

var errTooManyInvalid = errors.New("too many invalid records")

// ingestType reports whether a Content-Type is one POST /v1/writes reads.
func ingestType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json", "application/jsonlines":
		return true
	}
	return false
}

// eachRecord calls fn with each record of a body — a JSON array of writes,
// or NDJSON, one write a line, blank lines skipped — without holding more
// than one at a time beyond the body itself. It returns the number of
// records, or fn's first error.
func eachRecord(body []byte, fn func(i int, rec []byte) error) (int, error) {
	trimmed := bytes.TrimSpace(body)
	n := 0
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.Token() // [
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return n, fmt.Errorf("malformed JSON array: element %d: %v", n, strings.TrimPrefix(err.Error(), "json: "))
			}
			if err := fn(n, raw); err != nil {
				return n, err
			}
			n++
		}
		if _, err := dec.Token(); err != nil {
			return n, fmt.Errorf("malformed JSON array: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
		if dec.More() {
			return n, errors.New("malformed JSON array: data after the closing ]")
		}
		return n, nil
	}
	for len(trimmed) > 0 {
		line := trimmed
		if i := bytes.IndexByte(trimmed, '\n'); i >= 0 {
			line, trimmed = trimmed[:i], trimmed[i+1:]
		} else {
			trimmed = nil
		}
		if l := bytes.TrimSpace(line); len(l) > 0 {
			if err := fn(n, l); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// clip shortens an error message for an answer.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *Server) getVertex(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := s.cfg.Reader.Vertex(r.Context(), id)
	if errors.Is(err, graft.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no vertex %q", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getEdges(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	dir, ok := graft.ParseDirection(r.URL.Query().Get("direction"))
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("direction: %q is not out, in or both", r.URL.Query().Get("direction")))
		return
	}
	if _, err := s.cfg.Reader.Vertex(r.Context(), id); errors.Is(err, graft.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no vertex %q", id))
		return
	} else if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	es, err := s.cfg.Reader.Edges(r.Context(), id, dir, r.URL.Query().Get("label"))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if es == nil {
		es = []graft.Edge{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"edges": es})
}

// Status is GET /v1/status.
type Status struct {
	Accepted     int64 `json:"accepted"`      // records POST /v1/writes stored in the stream
	Committed    int64 `json:"committed"`     // writes committed to the sink
	DeadLettered int64 `json:"dead_lettered"` // records dead-lettered (by the engine or rejected at ingest)
	Pending      int64 `json:"pending"`       // in the stream or the engine, not yet committed or dead-lettered; -1: unknown
	SourceLag    int64 `json:"source_lag"`    // records the source has not delivered yet; -1: unknown (LagError)
	// LagError says why the source's lag is unknown (its server did not
	// answer, a consumer is being recreated): source_lag and pending are
	// then -1, never 0, so that nothing waiting for "caught up" is told it.
	LagError         string `json:"lag_error,omitempty"`
	InFlight         int64  `json:"in_flight"` // taken by the engine, not yet committed or dead-lettered
	Eliminated       int64  `json:"eliminated_ops"`
	Coalesced        int64  `json:"coalesced_ops"`
	AvoidedConflicts int64  `json:"conflicts_avoided"` // writes batched behind a write they conflict with
	Conflicts        int64  `json:"conflicts"`
}

func (s *Server) status(ctx context.Context) Status {
	st := s.cfg.Engine.Stats().Snapshot()
	out := Status{
		Accepted: s.accepted.Load(), Committed: st.Committed, DeadLettered: st.DeadLetters + s.invalid.Load(),
		InFlight: st.InFlight(), Eliminated: st.Eliminated, Coalesced: st.Coalesced,
		AvoidedConflicts: st.InHotBatches, Conflicts: st.Conflicts,
	}
	if s.cfg.Lag != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		lag, err := s.cfg.Lag(ctx)
		if err != nil {
			out.SourceLag, out.Pending, out.LagError = -1, -1, err.Error()
			return out
		}
		out.SourceLag = lag
	}
	out.Pending = out.InFlight + out.SourceLag
	return out
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status(r.Context()))
}

// Status returns the current status (for the demo's progress line).
func (s *Server) Status(ctx context.Context) Status { return s.status(ctx) }

func (s *Server) getReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	err := s.cfg.Pinger.Ping(ctx)
	if err == nil && s.cfg.Engine != nil {
		err = s.cfg.Engine.Ready() // the locker is unreachable: writing is paused
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Watermark follows the positions the engine acknowledges, per partition,
// so that a request can wait until its records are committed.
type Watermark struct {
	mu    sync.Mutex
	pos   map[string]int64
	waits chan struct{}
}

// NewWatermark returns a watermark below every position.
func NewWatermark() *Watermark {
	return &Watermark{pos: map[string]int64{}, waits: make(chan struct{})}
}

// Advance moves the partition's watermark to pos (never back) and wakes
// waiters.
func (m *Watermark) Advance(pos graft.Position) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.pos[pos.Partition]; !ok || pos.Offset > cur {
		m.pos[pos.Partition] = pos.Offset
		close(m.waits)
		m.waits = make(chan struct{})
	}
}

// Reached reports whether every position is at or below its partition's
// watermark; if not, the channel is closed at the next advance.
func (m *Watermark) Reached(positions []graft.Position) (bool, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range positions {
		if cur, ok := m.pos[p.Partition]; !ok || cur < p.Offset {
			return false, m.waits
		}
	}
	return true, nil
}

// Wait blocks until every position is reached.
func (m *Watermark) Wait(ctx context.Context, positions []graft.Position) error {
	for {
		ok, ch := m.Reached(positions)
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Watch wraps a source so that its acknowledgements advance m. The wrapper
// keeps the source's graft.Rebalancer and graft.Abandoner, if it has them:
// hiding them would let a Kafka rebalance take partitions without draining
// them, or a lost Kinesis lease keep applying its records.
func (m *Watermark) Watch(src graft.Source) graft.Source {
	w := &watched{Source: src, m: m}
	if rb, ok := src.(graft.Rebalancer); ok {
		return &watchedRebalancer{watched: w, rb: rb}
	}
	return w
}

type watched struct {
	graft.Source
	m *Watermark
}

type watchedRebalancer struct {
	*watched
	rb graft.Rebalancer
}

func (w *watchedRebalancer) SetDrain(drain func(context.Context, []string) error) {
	w.rb.SetDrain(drain)
}

// SetAbandon passes the engine's abandon function on to a source that can
// lose partitions (graft.Abandoner); for other sources it is never called.
func (w *watchedRebalancer) SetAbandon(abandon func(string, int64)) {
	if ab, ok := w.rb.(graft.Abandoner); ok {
		ab.SetAbandon(abandon)
	}
}

func (w *watched) Ack(ctx context.Context, pos graft.Position) error {
	err := w.Source.Ack(ctx, pos)
	if err == nil {
		w.m.Advance(pos)
	}
	return err
}
