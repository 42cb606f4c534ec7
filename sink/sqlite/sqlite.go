// Package sqlite is Graft's embedded graph store: a property graph in one
// SQLite file, written through the pure-Go modernc.org/sqlite driver. It is
// the default sink (URL "sqlite:PATH") and a graft.Reader.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Store is the embedded graph store. One connection writes; a pool reads.
type Store struct {
	path string
	db   *sql.DB // readers
	wdb  *sql.DB // the single writer
	mu   sync.Mutex
	w    *writer
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// ParseURL returns the file path of a "sqlite:PATH" (or "sqlite://PATH") URL.
func ParseURL(raw string) (string, error) {
	rest, ok := strings.CutPrefix(raw, "sqlite:")
	if !ok {
		return "", fmt.Errorf("sink %q: not a sqlite: URL", raw)
	}
	rest = strings.TrimPrefix(rest, "//")
	if rest == "" {
		return "", fmt.Errorf("sink %q: no file path (use sqlite:PATH)", raw)
	}
	return rest, nil
}

// Open opens (creating if needed) the store at path and migrates its schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite:%s: %w", path, err)
	}
	dsn := func(mode string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		if mode != "" {
			q.Add("mode", mode)
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	wdb, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		return nil, fmt.Errorf("open sqlite:%s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	s := &Store{path: path, wdb: wdb}
	// Another process opening the same file at this instant (switching it
	// to WAL, migrating) can refuse at once with SQLITE_BUSY, without the
	// busy timeout: retry for as long as that timeout.
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 1; ; attempt++ {
		err := s.migrate(ctx)
		if err == nil {
			break
		}
		if classify(err) != graft.Conflict || time.Now().After(deadline) || ctx.Err() != nil {
			wdb.Close()
			return nil, fmt.Errorf("open sqlite:%s: %w", path, err)
		}
		time.Sleep(time.Duration(min(attempt, 20)) * 10 * time.Millisecond)
	}
	s.db, err = sql.Open("sqlite", dsn("ro"))
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open sqlite:%s: %w", path, err)
	}
	s.db.SetMaxOpenConns(4)
	return s, nil
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// migrate brings the schema up to date in one IMMEDIATE transaction that
// reads the version inside it: processes opening a new store at the same
// time migrate it once (the second waits for the first, then finds it done).
//
// A store already up to date is not locked at all: another process may be
// writing it (a second graft instance), and waiting for its write lock could
// outlast the busy timeout.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var current int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err == nil && current == len(migrations) {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migration: %w", err)
	}
	done := false
	defer func() {
		if !done {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return graft.NewError(graft.Fatal, fmt.Errorf("schema version %d is newer than this graft knows (%d): upgrade graft", version, len(migrations)))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("migration: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("migration: %w", err)
	}
	done = true
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Limits implements graft.Sink. One writer: SQLite serializes writers anyway.
func (s *Store) Limits() graft.SinkLimits {
	return graft.SinkLimits{MaxUnits: 4000, MaxBytes: 4 << 20, MaxWrites: 1000, Concurrency: 2}
}

// Ping implements graft.Sink.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		return fmt.Errorf("sqlite:%s: %w", s.path, err)
	}
	return nil
}

// Close implements graft.Sink.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.close()
		s.w = nil
	}
	return errors.Join(s.db.Close(), s.wdb.Close())
}

// Apply implements graft.Sink: the batch in one IMMEDIATE transaction,
// durable when Apply returns nil.
func (s *Store) Apply(ctx context.Context, b *graft.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		w, err := newWriter(ctx, s.wdb)
		if err != nil {
			return wrap(err, -1, "sqlite:%s: prepare", s.path)
		}
		s.w = w
	}
	err := s.w.apply(ctx, b)
	if err != nil && graft.ClassOf(err) != graft.Permanent && graft.ClassOf(err) != graft.MissingEndpoint {
		// The connection may be in any state: start afresh next time.
		s.w.close()
		s.w = nil
	}
	return err
}

// writer holds the write connection and its prepared statements.
type writer struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	buf   []byte
}

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn, stmts: map[string]*sql.Stmt{}}
	for _, q := range []string{stmtUpsertVertex, stmtVertexLabel, stmtDeleteVertex, stmtVertexProps, stmtSetVertexProp,
		stmtUpsertEdge, stmtUpsertEdgeID, stmtFindEdge, stmtFindEdgeID, stmtDeleteEdge, stmtSetEdgeProps,
		stmtReplaceDelete, stmtReplaceInsert, stmtVerticesIn, stmtFenceGet, stmtFenceSet} {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			w.close()
			return nil, err
		}
		w.stmts[q] = st
	}
	return w, nil
}

func (w *writer) close() {
	for _, st := range w.stmts {
		st.Close()
	}
	w.conn.Close()
}

func (w *writer) apply(ctx context.Context, b *graft.Batch) (err error) {
	// Statements run under a context that cannot be cancelled: the driver
	// watches a cancellable one with a goroutine per statement, which costs
	// more than the statement. Cancellation is checked between writes.
	stop := ctx
	ctx = context.WithoutCancel(ctx)
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return wrap(err, -1, "begin")
	}
	defer func() {
		if err != nil {
			if _, rerr := w.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				err = errors.Join(err, graft.NewError(graft.Transient, fmt.Errorf("rollback: %w", rerr)))
			}
		}
	}()
	var fenceKeys []string
	if b.Fence != 0 {
		fenceKeys = b.FenceKeys()
		for _, k := range fenceKeys {
			var t int64
			switch err := w.stmts[stmtFenceGet].QueryRowContext(ctx, k).Scan(&t); {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return wrap(err, -1, "fence")
			case uint64(t) > b.Fence:
				return graft.NewError(graft.Conflict, fmt.Errorf("key %q: token %d < %d: %w", k, b.Fence, t, graft.ErrFenced))
			}
		}
	}
	apply := w.applyOps
	if semantics.Versioned(b.Writes) {
		apply = w.applyVersioned // versions.go
	}
	if err := apply(stop, ctx, b); err != nil {
		return err
	}
	for _, k := range fenceKeys {
		if _, err := w.stmts[stmtFenceSet].ExecContext(ctx, k, int64(b.Fence)); err != nil {
			return wrap(err, -1, "fence")
		}
	}
	if _, err := w.conn.ExecContext(ctx, "COMMIT"); err != nil {
		return wrap(err, -1, "commit")
	}
	return nil
}

// applyOps applies the batch op by op (stop is checked between writes,
// ctx runs the statements).
func (w *writer) applyOps(stop, ctx context.Context, b *graft.Batch) error {
	for i, wr := range b.Writes {
		if err := stop.Err(); err != nil {
			return graft.NewError(graft.Transient, err)
		}
		for j := range wr.Ops {
			if err := w.applyOp(ctx, &wr.Ops[j]); err != nil {
				var ge *graft.Error
				if errors.As(err, &ge) {
					return &graft.Error{Class: ge.Class, Index: i, Err: fmt.Errorf("ops[%d]: %w", j, ge.Err)}
				}
				return wrap(err, i, "ops[%d] %s", j, wr.Ops[j].Kind)
			}
		}
	}
	return nil
}

func (w *writer) props(p graft.Props) string {
	w.buf = p.AppendJSON(w.buf[:0])
	return string(w.buf)
}

func (w *writer) applyOp(ctx context.Context, op *graft.Op) error {
	st := w.stmts
	switch op.Kind {
	case graft.UpsertVertex:
		res, err := st[stmtUpsertVertex].ExecContext(ctx, op.ID, op.Label, w.props(op.Props))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			var label string
			if err := st[stmtVertexLabel].QueryRowContext(ctx, op.ID).Scan(&label); err != nil {
				return err
			}
			return graft.Errorf(graft.Permanent, -1, "vertex %q has label %q, not %q", op.ID, label, op.Label)
		}
	case graft.DeleteVertex:
		_, err := st[stmtDeleteVertex].ExecContext(ctx, op.ID)
		return err
	case graft.DropVertexProps:
		var raw string
		switch err := st[stmtVertexProps].QueryRowContext(ctx, op.ID).Scan(&raw); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		p, err := dropKeys(raw, op.Keys)
		if err != nil {
			return err
		}
		_, err = st[stmtSetVertexProp].ExecContext(ctx, op.ID, w.props(p))
		return err
	case graft.UpsertEdge:
		if op.ID == "" {
			_, err := st[stmtUpsertEdge].ExecContext(ctx, op.Label, op.From, op.To, w.props(op.Props))
			return w.endpointError(ctx, err, op.Label, op.From, op.To)
		}
		var label, from, to string
		err := st[stmtUpsertEdgeID].QueryRowContext(ctx, op.ID, op.Label, op.From, op.To, w.props(op.Props)).Scan(&label, &from, &to)
		if err != nil {
			return w.endpointError(ctx, err, op.Label, op.From, op.To)
		}
		return edgeMismatch(op, label, from, to)
	case graft.DeleteEdge, graft.DropEdgeProps:
		raw, found, err := w.findEdge(ctx, op)
		if err != nil || !found {
			return err
		}
		if op.Kind == graft.DeleteEdge {
			_, err = st[stmtDeleteEdge].ExecContext(ctx, op.Label, op.From, op.To, op.ID)
			return err
		}
		p, err := dropKeys(raw, op.Keys)
		if err != nil {
			return err
		}
		_, err = st[stmtSetEdgeProps].ExecContext(ctx, op.Label, op.From, op.To, op.ID, w.props(p))
		return err
	case graft.ReplaceEdges:
		targets := w.idArray(op.Targets)
		if _, err := st[stmtReplaceDelete].ExecContext(ctx, op.From, op.Label, targets); err != nil {
			return err
		}
		if len(op.Targets) == 0 {
			return nil
		}
		_, err := st[stmtReplaceInsert].ExecContext(ctx, op.From, op.Label, targets)
		if err != nil && classify(err) == graft.MissingEndpoint {
			return w.missing(ctx, op.Label, op.From, append([]string{op.From}, op.Targets...))
		}
		return err
	default:
		return graft.Errorf(graft.Permanent, -1, "unknown op kind %d", op.Kind)
	}
	return nil
}

// findEdge returns the props of the edge an op identifies, and whether it
// exists. An explicit id naming an edge with other endpoints is an error.
func (w *writer) findEdge(ctx context.Context, op *graft.Op) (props string, found bool, err error) {
	if op.ID != "" {
		var label, from, to string
		err := w.stmts[stmtFindEdgeID].QueryRowContext(ctx, op.ID).Scan(&label, &from, &to)
		if errors.Is(err, sql.ErrNoRows) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		if err := edgeMismatch(op, label, from, to); err != nil {
			return "", false, err
		}
	}
	err = w.stmts[stmtFindEdge].QueryRowContext(ctx, op.Label, op.From, op.To, op.ID).Scan(&props)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return props, err == nil, err
}

func edgeMismatch(op *graft.Op, label, from, to string) error {
	if label != op.Label || from != op.From || to != op.To {
		return graft.Errorf(graft.Permanent, -1, "edge id %q is %s %q→%q, not %s %q→%q",
			op.ID, label, from, to, op.Label, op.From, op.To)
	}
	return nil
}

// endpointError turns a foreign key failure into a missing-endpoint error
// that names the vertex.
func (w *writer) endpointError(ctx context.Context, err error, label, from, to string) error {
	if err == nil || classify(err) != graft.MissingEndpoint {
		return err
	}
	return w.missing(ctx, label, from, []string{from, to})
}

func (w *writer) missing(ctx context.Context, label, from string, ids []string) error {
	rows, err := w.stmts[stmtVerticesIn].QueryContext(ctx, w.idArray(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		have[id] = true
	}
	for _, id := range ids {
		if !have[id] {
			if id == from {
				return graft.Errorf(graft.MissingEndpoint, -1, "edge %s from %q: vertex %q does not exist", label, from, id)
			}
			return graft.Errorf(graft.MissingEndpoint, -1, "edge %s %q→%q: vertex %q does not exist", label, from, id, id)
		}
	}
	return graft.Errorf(graft.MissingEndpoint, -1, "edge %s from %q: an endpoint does not exist", label, from)
}

func (w *writer) idArray(ids []string) string {
	b := w.buf[:0]
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = graft.String(id).AppendJSON(b)
	}
	w.buf = append(b, ']')
	return string(w.buf)
}

func dropKeys(raw string, keys []string) (graft.Props, error) {
	p, err := parseProps(raw)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		delete(p, k)
	}
	return p, nil
}

func parseProps(raw string) (graft.Props, error) {
	var p graft.Props
	if raw == "" || raw == "{}" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, graft.NewError(graft.Fatal, fmt.Errorf("stored properties %.60q do not decode: %w", raw, err))
	}
	return p, nil
}

// Reset deletes the whole graph (for benchmarks: one store, several runs).
func (s *Store) Reset(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil { // it holds the only write connection
		s.w.close()
		s.w = nil
	}
	_, err := s.wdb.ExecContext(ctx, `DELETE FROM edges; DELETE FROM vertices; DELETE FROM fences; DELETE FROM graft_versions; DELETE FROM graft_groups;`)
	return err
}
