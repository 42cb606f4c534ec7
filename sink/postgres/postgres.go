// Package postgres is the PostgreSQL sink (URL postgres://…, TLS per the
// usual sslmode parameters) and its Reader.
//
// A batch is one transaction of a fixed number of statements, whatever its
// size: it locks and reads the part of the graph the batch touches (vertices
// by id, edges by key, by explicit id, and the edge groups replaceEdges
// rewrites), applies the writes in order to that part in memory with the
// reference semantics (internal/memgraph) — which finds a failing write
// exactly, before anything is written — and writes the difference back with
// set-based statements over unnest arrays.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Store is a PostgreSQL graph.
type Store struct {
	pool     *pgxpool.Pool
	endpoint string // host:port/db, for messages (no password)
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// Open connects and migrates the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("sink postgres: %v", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	endpoint := fmt.Sprintf("postgres://%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sink %s: %w", endpoint, err)
	}
	s := &Store{pool: pool, endpoint: endpoint}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, &graft.Error{Class: classify(err), Index: -1, Err: fmt.Errorf("sink %s: %w", endpoint, err)}
	}
	return s, nil
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

func (s *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7477463)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS graft_schema (version int NOT NULL)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRow(ctx, `SELECT version FROM graft_schema`).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			if _, err := tx.Exec(ctx, `INSERT INTO graft_schema VALUES (0)`); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this graft knows (%d): upgrade graft", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE graft_schema SET version = $1`, len(migrations))
		return err
	})
}

// Endpoint names the server and database (no credentials).
func (s *Store) Endpoint() string { return s.endpoint }

// Limits implements graft.Sink.
func (s *Store) Limits() graft.SinkLimits {
	return graft.SinkLimits{MaxUnits: 20000, MaxBytes: 16 << 20, MaxWrites: 2000, Concurrency: 8}
}

// Ping implements graft.Sink.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.endpoint, err)
	}
	return nil
}

// Close implements graft.Sink.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Apply implements graft.Sink.
func (s *Store) Apply(ctx context.Context, b *graft.Batch) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return wrap(err, -1, "%s: begin", s.endpoint)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if b.Fence != 0 {
		if err := s.fence(ctx, tx, b); err != nil {
			return err
		}
	}
	if err := s.apply(ctx, tx, b); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return wrap(err, -1, "%s: commit", s.endpoint)
	}
	return nil
}

// fence refuses the batch when a key has committed a higher token.
func (s *Store) fence(ctx context.Context, tx pgx.Tx, b *graft.Batch) error {
	keys := b.FenceKeys()
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		raw[i] = []byte(k)
	}
	rows, err := tx.Query(ctx, sqlFence, raw, int64(b.Fence))
	if err != nil {
		return wrap(err, -1, "%s: fence", s.endpoint)
	}
	got := map[string]bool{}
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return wrap(err, -1, "%s: fence", s.endpoint)
		}
		got[string(k)] = true
	}
	if err := rows.Err(); err != nil {
		return wrap(err, -1, "%s: fence", s.endpoint)
	}
	for _, k := range keys {
		if !got[k] {
			return graft.NewError(graft.Conflict, fmt.Errorf("key %q: token %d: %w", k, b.Fence, graft.ErrFenced))
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, tx pgx.Tx, b *graft.Batch) error {
	if err := checkText(b); err != nil {
		return err
	}
	touched := semantics.TouchedBy(b.Writes)
	// Load it, locked, in a fixed order (fewer deadlocks between batches).
	l := semantics.NewLoaded()
	rows, err := tx.Query(ctx, sqlLoadVertices, sortedKeys(touched.Vertices))
	if err != nil {
		return wrap(err, -1, "%s: read vertices", s.endpoint)
	}
	for rows.Next() {
		var v graft.Vertex
		var raw string
		if err := rows.Scan(&v.ID, &v.Label, &raw); err != nil {
			rows.Close()
			return wrap(err, -1, "%s: read vertices", s.endpoint)
		}
		if v.Props, err = parseProps(raw); err != nil {
			rows.Close()
			return err
		}
		l.Vertices[v.ID] = v
	}
	if err := rows.Err(); err != nil {
		return wrap(err, -1, "%s: read vertices", s.endpoint)
	}
	loadEdges := func(q string, args ...any) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return wrap(err, -1, "%s: read edges", s.endpoint)
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEdge(rows)
			if err != nil {
				return err
			}
			l.Edges[semantics.EdgeKey(e)] = *e
		}
		return rows.Err()
	}
	if len(touched.Natural) > 0 {
		var src, label, dst []string
		for r := range touched.Natural {
			src, label, dst = append(src, r[0]), append(label, r[1]), append(dst, r[2])
		}
		if err := loadEdges(sqlLoadEdges, src, label, dst); err != nil {
			return err
		}
	}
	if len(touched.IDs) > 0 {
		if err := loadEdges(sqlLoadEdgesByID, sortedKeys(touched.IDs)); err != nil {
			return err
		}
	}
	if len(touched.Groups) > 0 {
		var src, label []string
		for k := range touched.Groups {
			src, label = append(src, k[0]), append(label, k[1])
		}
		if err := loadEdges(sqlLoadGroups, src, label); err != nil {
			return err
		}
	}
	if semantics.Versioned(b.Writes) {
		if ids := semantics.DeletedByVersioned(b.Writes); len(ids) > 0 {
			if err := loadEdges(sqlLoadIncident, ids); err != nil {
				return err
			}
		}
		if err := s.loadVersions(ctx, tx, b.Writes, touched, &l); err != nil {
			return err
		}
	}
	g := semantics.New()
	g.Load(l)

	// Apply in order, in memory: a failing write is found before anything
	// is written, and named by its index.
	deleted, err := g.ApplyAttributed(b.Writes, func(id string) bool { _, ok := l.Vertices[id]; return ok })
	if err != nil {
		return err
	}

	// Write the difference.
	c := g.Changes(l, deleted)
	batch := &pgx.Batch{}
	if len(c.DeleteVertices) > 0 {
		batch.Queue(sqlDeleteVertices, c.DeleteVertices)
	}
	if len(c.DeleteEdges) > 0 {
		var cols [4][]string
		for _, e := range c.DeleteEdges {
			cols[0], cols[1], cols[2], cols[3] = append(cols[0], e.From), append(cols[1], e.Label), append(cols[2], e.To), append(cols[3], e.ID)
		}
		batch.Queue(sqlDeleteEdges, cols[0], cols[1], cols[2], cols[3])
	}
	if len(c.PutVertices) > 0 {
		var cols [3][]string
		for _, v := range c.PutVertices {
			cols[0], cols[1], cols[2] = append(cols[0], v.ID), append(cols[1], v.Label), append(cols[2], string(v.Props.AppendJSON(nil)))
		}
		batch.Queue(sqlUpsertVertices, cols[0], cols[1], cols[2])
	}
	if len(c.PutEdges) > 0 {
		var cols [5][]string
		for _, e := range c.PutEdges {
			cols[0], cols[1], cols[2], cols[3] = append(cols[0], e.From), append(cols[1], e.Label), append(cols[2], e.To), append(cols[3], e.ID)
			cols[4] = append(cols[4], string(e.Props.AppendJSON(nil)))
		}
		batch.Queue(sqlUpsertEdges, cols[0], cols[1], cols[2], cols[3], cols[4])
	}
	saveVersions(batch, c)
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return wrap(err, -1, "%s: write", s.endpoint)
	}
	return nil
}

// checkText rejects strings PostgreSQL text cannot hold (NUL), naming the
// write: a permanent error, found before anything is sent.
func checkText(b *graft.Batch) error {
	for i, w := range b.Writes {
		for j := range w.Ops {
			op := &w.Ops[j]
			for _, f := range []struct{ name, v string }{{"id", op.ID}, {"label", op.Label}, {"from", op.From}, {"to", op.To}} {
				if strings.IndexByte(f.v, 0) >= 0 {
					return graft.Errorf(graft.Permanent, i, "ops[%d].%s: PostgreSQL text cannot hold a NUL byte (\\u0000)", j, f.name)
				}
			}
			for _, t := range op.Targets {
				if strings.IndexByte(t, 0) >= 0 {
					return graft.Errorf(graft.Permanent, i, "ops[%d].to: PostgreSQL text cannot hold a NUL byte (\\u0000)", j)
				}
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Reset deletes the whole graph (for benchmarks: one store, several runs).
func (s *Store) Reset(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `TRUNCATE edges, vertices, graft_fences, graft_versions, graft_groups`)
	return err
}
