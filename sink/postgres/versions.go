package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Version guards (docs/DESIGN.md, "Versions"): the versions versioned
// writes leave are rows of graft_versions (one per vertex or edge, kept
// after it is deleted: its tombstone) and graft_groups (one per (from,
// label) group a replaceEdges rewrote). A batch with a versioned write
// loads the rows of what it touches into the in-memory graph with the
// elements, applies there, and writes back the rows that changed. A batch
// without one reads and writes none of them.

const (
	sqlLoadVersions = `SELECT v.kind, v.a, v.b, v.c, v.up, v.floor, v.props FROM graft_versions v
		JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(kind, a, b, c)
		  ON v.kind = k.kind AND v.a = k.a AND v.b = k.b AND v.c = k.c
		ORDER BY 1, 2, 3, 4 FOR UPDATE OF v`
	sqlSaveVersions = `INSERT INTO graft_versions (kind, a, b, c, up, floor, props)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
		ON CONFLICT (kind, a, b, c) DO UPDATE SET up = excluded.up, floor = excluded.floor, props = excluded.props`
	sqlLoadGroupVersions = `SELECT g.src, g.label, g.newest, g.named FROM graft_groups g
		JOIN unnest($1::text[], $2::text[]) AS k(src, label) ON g.src = k.src AND g.label = k.label
		ORDER BY 1, 2 FOR UPDATE OF g`
	sqlSaveGroupVersions = `INSERT INTO graft_groups (src, label, newest, named)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
		ON CONFLICT (src, label) DO UPDATE SET newest = excluded.newest, named = excluded.named`
	// The edges of vertices a versioned write deletes: a delete older than
	// a newer upsert leaves the vertex and its newer edges, which the
	// delete-and-reinsert of the vertex row must put back.
	sqlLoadIncident = `SELECT src, label, dst, eid, props FROM edges WHERE src = ANY($1::text[]) OR dst = ANY($1::text[])
		ORDER BY 1, 2, 3, 4 FOR UPDATE`
)

// loadVersions loads into l the versions the batch needs
// (semantics.VersionKeys).
func (s *Store) loadVersions(ctx context.Context, tx pgx.Tx, ws []*graft.Write, t semantics.Touched, l *semantics.Loaded) error {
	keys, groups := semantics.VersionKeys(ws, t, l.Edges)
	var cols [4][]string
	for _, k := range keys {
		kind, a, b, c := semantics.RowOf(k)
		cols[0], cols[1], cols[2], cols[3] = append(cols[0], kind), append(cols[1], a), append(cols[2], b), append(cols[3], c)
	}
	rows, err := tx.Query(ctx, sqlLoadVersions, cols[0], cols[1], cols[2], cols[3])
	if err != nil {
		return wrap(err, -1, "%s: read versions", s.endpoint)
	}
	for rows.Next() {
		var kind, a, b, c, raw string
		var v semantics.Versions
		if err := rows.Scan(&kind, &a, &b, &c, &v.Up, &v.Floor, &raw); err != nil {
			rows.Close()
			return wrap(err, -1, "%s: read versions", s.endpoint)
		}
		if err := json.Unmarshal([]byte(raw), &v.Props); err != nil {
			rows.Close()
			return graft.NewError(graft.Fatal, fmt.Errorf("%s: stored property versions %.60q do not decode: %w", s.endpoint, raw, err))
		}
		l.Versions[semantics.KeyOf(kind, a, b, c)] = v
	}
	if err := rows.Err(); err != nil {
		return wrap(err, -1, "%s: read versions", s.endpoint)
	}
	var src, label []string
	for _, k := range groups {
		src, label = append(src, k[0]), append(label, k[1])
	}
	rows, err = tx.Query(ctx, sqlLoadGroupVersions, src, label)
	if err != nil {
		return wrap(err, -1, "%s: read group versions", s.endpoint)
	}
	defer rows.Close()
	for rows.Next() {
		var from, lbl, raw string
		var gr semantics.Group
		if err := rows.Scan(&from, &lbl, &gr.Newest, &raw); err != nil {
			return wrap(err, -1, "%s: read group versions", s.endpoint)
		}
		if err := json.Unmarshal([]byte(raw), &gr.Named); err != nil {
			return graft.NewError(graft.Fatal, fmt.Errorf("%s: stored group versions %.60q do not decode: %w", s.endpoint, raw, err))
		}
		l.Groups[[2]string{from, lbl}] = gr
	}
	return rows.Err()
}

// saveVersions queues the versions and groups the batch changed.
func saveVersions(batch *pgx.Batch, c semantics.Changes) {
	if len(c.PutVersions) > 0 {
		var cols [4][]string
		var up, floor []int64
		var props []string
		for k, v := range c.PutVersions {
			kind, a, b, cc := semantics.RowOf(k)
			cols[0], cols[1], cols[2], cols[3] = append(cols[0], kind), append(cols[1], a), append(cols[2], b), append(cols[3], cc)
			up, floor, props = append(up, v.Up), append(floor, v.Floor), append(props, v.PropsJSON())
		}
		batch.Queue(sqlSaveVersions, cols[0], cols[1], cols[2], cols[3], up, floor, props)
	}
	if len(c.PutGroups) > 0 {
		var src, label, named []string
		var newest []int64
		for k, gr := range c.PutGroups {
			src, label = append(src, k[0]), append(label, k[1])
			newest, named = append(newest, gr.Newest), append(named, gr.NamedJSON())
		}
		batch.Queue(sqlSaveGroupVersions, src, label, newest, named)
	}
}
