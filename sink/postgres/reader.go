package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/graftdb/graft"
)

func parseProps(raw string) (graft.Props, error) {
	if raw == "" || raw == "{}" {
		return nil, nil
	}
	var p graft.Props
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, graft.NewError(graft.Fatal, fmt.Errorf("stored properties %.60q do not decode: %w", raw, err))
	}
	return p, nil
}

func scanEdge(rows pgx.Rows) (*graft.Edge, error) {
	var e graft.Edge
	var raw string
	if err := rows.Scan(&e.From, &e.Label, &e.To, &e.ID, &raw); err != nil {
		return nil, err
	}
	p, err := parseProps(raw)
	if err != nil {
		return nil, err
	}
	e.Props = p
	return &e, nil
}

// Vertex implements graft.Reader.
func (s *Store) Vertex(ctx context.Context, id string) (*graft.Vertex, error) {
	var v graft.Vertex
	var raw string
	err := s.pool.QueryRow(ctx, `SELECT id, label, props FROM vertices WHERE id = $1`, id).Scan(&v.ID, &v.Label, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, graft.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read vertex: %w", s.endpoint, err)
	}
	if v.Props, err = parseProps(raw); err != nil {
		return nil, err
	}
	return &v, nil
}

// Edges implements graft.Reader, ordered by (from, label, to, id).
func (s *Store) Edges(ctx context.Context, id string, dir graft.Direction, label string) ([]graft.Edge, error) {
	const cols = `SELECT src, label, dst, eid, props FROM edges `
	var q string
	switch dir {
	case graft.Out:
		q = cols + `WHERE src = $1 AND ($2 = '' OR label = $2)`
	case graft.In:
		q = cols + `WHERE dst = $1 AND ($2 = '' OR label = $2)`
	default:
		q = cols + `WHERE src = $1 AND ($2 = '' OR label = $2) UNION ALL ` + cols + `WHERE dst = $1 AND src <> $1 AND ($2 = '' OR label = $2)`
	}
	rows, err := s.pool.Query(ctx, `SELECT * FROM (`+q+`) AS e ORDER BY src, label, dst, eid`, id, label)
	if err != nil {
		return nil, fmt.Errorf("%s: read edges: %w", s.endpoint, err)
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

// Export implements graft.Reader: one repeatable-read snapshot, vertices by
// id then edges by (from, label, to), streamed.
func (s *Store) Export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, label, props FROM vertices ORDER BY id COLLATE "C"`)
		if err != nil {
			return fmt.Errorf("%s: export: %w", s.endpoint, err)
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
		rows, err = tx.Query(ctx, `SELECT src, label, dst, eid, props FROM edges ORDER BY src COLLATE "C", label COLLATE "C", dst COLLATE "C", eid COLLATE "C"`)
		if err != nil {
			return fmt.Errorf("%s: export: %w", s.endpoint, err)
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
	})
}
