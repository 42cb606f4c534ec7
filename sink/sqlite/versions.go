package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Version guards (docs/DESIGN.md, "Versions"). A batch with a versioned
// write goes another way than the statements per op: it loads what it
// touches — elements, and their versions from graft_versions and
// graft_groups (tombstones included) — applies the batch in memory with
// package semantics, and writes the difference, as the PostgreSQL sink
// does for every batch. Batches without one never read the tables.

const (
	sqlVLoadVertices = `SELECT id, label, props FROM vertices WHERE id IN (SELECT value FROM json_each(?1))`
	sqlVLoadNatural  = `SELECT e.src, e.label, e.dst, e.eid, e.props FROM edges e JOIN json_each(?1) j
		ON e.src = j.value->>0 AND e.label = j.value->>1 AND e.dst = j.value->>2 AND e.eid = ''`
	sqlVLoadByID   = `SELECT src, label, dst, eid, props FROM edges WHERE eid IN (SELECT value FROM json_each(?1)) AND eid <> ''`
	sqlVLoadGroups = `SELECT e.src, e.label, e.dst, e.eid, e.props FROM edges e JOIN json_each(?1) j
		ON e.src = j.value->>0 AND e.label = j.value->>1`
	sqlVLoadIncident = `SELECT src, label, dst, eid, props FROM edges
		WHERE src IN (SELECT value FROM json_each(?1)) OR dst IN (SELECT value FROM json_each(?1))`
	sqlVLoadVersions = `SELECT v.kind, v.a, v.b, v.c, v.up, v.floor, v.props FROM graft_versions v JOIN json_each(?1) j
		ON v.kind = j.value->>0 AND v.a = j.value->>1 AND v.b = j.value->>2 AND v.c = j.value->>3`
	sqlVLoadGroupVersions = `SELECT g.src, g.label, g.newest, g.named FROM graft_groups g JOIN json_each(?1) j
		ON g.src = j.value->>0 AND g.label = j.value->>1`

	sqlVDeleteVertex = `DELETE FROM vertices WHERE id = ?1`
	sqlVDeleteEdge   = `DELETE FROM edges WHERE src = ?1 AND label = ?2 AND dst = ?3 AND eid = ?4`
	sqlVPutVertex    = `INSERT INTO vertices (id, label, props) VALUES (?1, ?2, ?3)
		ON CONFLICT (id) DO UPDATE SET label = excluded.label, props = excluded.props`
	sqlVPutEdge = `INSERT INTO edges (src, label, dst, eid, props) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT (src, label, dst, eid) DO UPDATE SET props = excluded.props`
	sqlVPutVersions = `INSERT INTO graft_versions (kind, a, b, c, up, floor, props) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		ON CONFLICT (kind, a, b, c) DO UPDATE SET up = excluded.up, floor = excluded.floor, props = excluded.props`
	sqlVPutGroup = `INSERT INTO graft_groups (src, label, newest, named) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (src, label) DO UPDATE SET newest = excluded.newest, named = excluded.named`
)

// applyVersioned applies a batch with versioned writes inside the open
// transaction (stop: as applyOps).
func (w *writer) applyVersioned(stop, ctx context.Context, b *graft.Batch) error {
	if err := stop.Err(); err != nil {
		return graft.NewError(graft.Transient, err)
	}
	t := semantics.TouchedBy(b.Writes)
	l := semantics.NewLoaded()
	rows, err := w.conn.QueryContext(ctx, sqlVLoadVertices, jsonArg(keysOf(t.Vertices)))
	if err != nil {
		return wrap(err, -1, "read vertices")
	}
	for rows.Next() {
		var v graft.Vertex
		var raw string
		if err := rows.Scan(&v.ID, &v.Label, &raw); err != nil {
			rows.Close()
			return wrap(err, -1, "read vertices")
		}
		if v.Props, err = parseProps(raw); err != nil {
			rows.Close()
			return err
		}
		l.Vertices[v.ID] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap(err, -1, "read vertices")
	}
	loadEdges := func(q string, arg any) error {
		rows, err := w.conn.QueryContext(ctx, q, arg)
		if err != nil {
			return wrap(err, -1, "read edges")
		}
		defer rows.Close()
		for rows.Next() {
			var e graft.Edge
			var raw string
			if err := rows.Scan(&e.From, &e.Label, &e.To, &e.ID, &raw); err != nil {
				return wrap(err, -1, "read edges")
			}
			if e.Props, err = parseProps(raw); err != nil {
				return err
			}
			l.Edges[semantics.EdgeKey(&e)] = e
		}
		return rows.Err()
	}
	var natural, groups [][]string
	for r := range t.Natural {
		natural = append(natural, r[:])
	}
	for g := range t.Groups {
		groups = append(groups, g[:])
	}
	for _, q := range []struct {
		sql string
		arg any
	}{
		{sqlVLoadNatural, jsonArg(natural)},
		{sqlVLoadByID, jsonArg(keysOf(t.IDs))},
		{sqlVLoadGroups, jsonArg(groups)},
		{sqlVLoadIncident, jsonArg(semantics.DeletedByVersioned(b.Writes))},
	} {
		if err := loadEdges(q.sql, q.arg); err != nil {
			return err
		}
	}
	if err := w.loadVersions(ctx, b.Writes, t, &l); err != nil {
		return err
	}
	g := semantics.New()
	g.Load(l)
	deleted, err := g.ApplyAttributed(b.Writes, func(id string) bool { _, ok := l.Vertices[id]; return ok })
	if err != nil {
		return err
	}
	return w.write(ctx, g.Changes(l, deleted))
}

func (w *writer) loadVersions(ctx context.Context, ws []*graft.Write, t semantics.Touched, l *semantics.Loaded) error {
	keys, groups := semantics.VersionKeys(ws, t, l.Edges)
	rowsOf := make([][4]string, len(keys))
	for i, k := range keys {
		rowsOf[i][0], rowsOf[i][1], rowsOf[i][2], rowsOf[i][3] = semantics.RowOf(k)
	}
	rows, err := w.conn.QueryContext(ctx, sqlVLoadVersions, jsonArg(rowsOf))
	if err != nil {
		return wrap(err, -1, "read versions")
	}
	for rows.Next() {
		var kind, a, b, c, raw string
		var v semantics.Versions
		if err := rows.Scan(&kind, &a, &b, &c, &v.Up, &v.Floor, &raw); err != nil {
			rows.Close()
			return wrap(err, -1, "read versions")
		}
		if err := json.Unmarshal([]byte(raw), &v.Props); err != nil {
			rows.Close()
			return graft.NewError(graft.Fatal, fmt.Errorf("stored property versions %.60q do not decode: %w", raw, err))
		}
		l.Versions[semantics.KeyOf(kind, a, b, c)] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap(err, -1, "read versions")
	}
	rows, err = w.conn.QueryContext(ctx, sqlVLoadGroupVersions, jsonArg(groups))
	if err != nil {
		return wrap(err, -1, "read group versions")
	}
	defer rows.Close()
	for rows.Next() {
		var from, label, raw string
		var gr semantics.Group
		if err := rows.Scan(&from, &label, &gr.Newest, &raw); err != nil {
			return wrap(err, -1, "read group versions")
		}
		if err := json.Unmarshal([]byte(raw), &gr.Named); err != nil {
			return graft.NewError(graft.Fatal, fmt.Errorf("stored group versions %.60q do not decode: %w", raw, err))
		}
		l.Groups[[2]string{from, label}] = gr
	}
	return rows.Err()
}

// write writes the changes (deleting a vertex deletes its edges: foreign
// keys, ON DELETE CASCADE), each statement prepared once per batch. (Kept
// with the writer's, they stopped the last close from checkpointing the
// WAL into the file: TestDamagedFileNamed.)
func (w *writer) write(ctx context.Context, c semantics.Changes) error {
	stmts := map[string]*sql.Stmt{}
	defer func() {
		for _, st := range stmts {
			st.Close()
		}
	}()
	exec := func(q string, args ...any) error {
		st := stmts[q]
		if st == nil {
			var err error
			if st, err = w.conn.PrepareContext(ctx, q); err != nil {
				return wrap(err, -1, "write")
			}
			stmts[q] = st
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return wrap(err, -1, "write")
		}
		return nil
	}
	for _, id := range c.DeleteVertices {
		if err := exec(sqlVDeleteVertex, id); err != nil {
			return err
		}
	}
	for _, e := range c.DeleteEdges {
		if err := exec(sqlVDeleteEdge, e.From, e.Label, e.To, e.ID); err != nil {
			return err
		}
	}
	for _, v := range c.PutVertices {
		if err := exec(sqlVPutVertex, v.ID, v.Label, w.props(v.Props)); err != nil {
			return err
		}
	}
	for _, e := range c.PutEdges {
		if err := exec(sqlVPutEdge, e.From, e.Label, e.To, e.ID, w.props(e.Props)); err != nil {
			return err
		}
	}
	for k, v := range c.PutVersions {
		kind, a, b, cc := semantics.RowOf(k)
		if err := exec(sqlVPutVersions, kind, a, b, cc, v.Up, v.Floor, v.PropsJSON()); err != nil {
			return err
		}
	}
	for k, gr := range c.PutGroups {
		if err := exec(sqlVPutGroup, k[0], k[1], gr.Newest, gr.NamedJSON()); err != nil {
			return err
		}
	}
	return nil
}

// jsonArg is v as a JSON text argument, for json_each.
func jsonArg(v any) string {
	b, _ := json.Marshal(v) // strings and slices of them always encode
	if string(b) == "null" {
		return "[]"
	}
	return string(b)
}

func keysOf[K comparable](m map[K]bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
