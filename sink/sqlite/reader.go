package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	lib "modernc.org/sqlite/lib"

	"github.com/graftdb/graft"
)

// Vertex implements graft.Reader.
func (s *Store) Vertex(ctx context.Context, id string) (*graft.Vertex, error) {
	var label, raw string
	err := s.db.QueryRowContext(ctx, `SELECT label, props FROM vertices WHERE id = ?1`, id).Scan(&label, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, graft.ErrNotFound
	}
	if err != nil {
		return nil, s.readErr("read vertex", err)
	}
	p, err := parseProps(raw)
	if err != nil {
		return nil, err
	}
	return &graft.Vertex{ID: id, Label: label, Props: p}, nil
}

// Edges implements graft.Reader, ordered by (from, label, to, id).
func (s *Store) Edges(ctx context.Context, id string, dir graft.Direction, label string) ([]graft.Edge, error) {
	const cols = `SELECT eid, label, src, dst, props FROM edges `
	var q string
	switch dir {
	case graft.Out:
		q = cols + `WHERE src = ?1 AND (?2 = '' OR label = ?2)`
	case graft.In:
		q = cols + `WHERE dst = ?1 AND (?2 = '' OR label = ?2)`
	default:
		q = cols + `WHERE src = ?1 AND (?2 = '' OR label = ?2) UNION ALL ` +
			cols + `WHERE dst = ?1 AND src <> ?1 AND (?2 = '' OR label = ?2)`
	}
	rows, err := s.db.QueryContext(ctx, `SELECT * FROM (`+q+`) ORDER BY 3, 2, 4, 1`, id, label)
	if err != nil {
		return nil, s.readErr("read edges", err)
	}
	defer rows.Close()
	var out []graft.Edge
	for rows.Next() {
		e, err := scanEdge(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

func scanEdge(rows *sql.Rows) (*graft.Edge, error) {
	var e graft.Edge
	var raw string
	if err := rows.Scan(&e.ID, &e.Label, &e.From, &e.To, &raw); err != nil {
		return nil, err
	}
	p, err := parseProps(raw)
	if err != nil {
		return nil, err
	}
	e.Props = p
	return &e, nil
}

// Export implements graft.Reader: vertices by id, then edges by (from,
// label, to), from one consistent snapshot.
// A store error names the file (and says so when it is damaged); an error
// of vf or ef is returned as it is.
func (s *Store) Export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	var cbErr error
	err := s.export(ctx,
		func(v *graft.Vertex) error {
			cbErr = vf(v)
			return cbErr
		},
		func(e *graft.Edge) error {
			cbErr = ef(e)
			return cbErr
		})
	if err == nil || cbErr != nil {
		return err
	}
	return s.readErr("export", err)
}

func (s *Store) export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, label, props FROM vertices ORDER BY id`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v graft.Vertex
		var raw string
		if err := rows.Scan(&v.ID, &v.Label, &raw); err != nil {
			rows.Close()
			return err
		}
		if v.Props, err = parseProps(raw); err != nil {
			rows.Close()
			return err
		}
		if err := vf(&v); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, `SELECT eid, label, src, dst, props FROM edges ORDER BY src, label, dst, eid`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEdge(rows)
		if err != nil {
			return err
		}
		if err := ef(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readErr names the file of a failed read, and says what to do when
// SQLite finds it damaged.
func (s *Store) readErr(op string, err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code()&0xff == lib.SQLITE_CORRUPT || se.Code()&0xff == lib.SQLITE_NOTADB) {
		return fmt.Errorf("sqlite:%s: %s: the file is damaged (%w). Restore it from a backup, or rebuild the graph by replaying "+
			"the source into a new file; sqlite3 %s 'PRAGMA integrity_check' lists the damage", s.path, op, err, s.path)
	}
	return fmt.Errorf("sqlite:%s: %s: %w", s.path, op, err)
}
