package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

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

func versioned(ws []*graft.Write) bool {
	for _, w := range ws {
		if w.Version != 0 {
			return true
		}
	}
	return false
}

// versionRow is a semantics key as the columns of graft_versions: kind v
// (a = id), n (a, b, c = src, label, dst) or i (a = explicit edge id).
func versionRow(key string) (kind, a, b, c string) {
	parts := strings.Split(key, "\x00")
	switch parts[0] {
	case "n":
		return "n", parts[2], parts[1], parts[3]
	default:
		return parts[0], parts[1], "", ""
	}
}

func versionKey(kind, a, b, c string) string {
	switch kind {
	case "v":
		return semantics.VertexKey(a)
	case "n":
		return semantics.EdgeKey(&graft.Edge{Label: b, From: a, To: c})
	default:
		return semantics.EdgeKey(&graft.Edge{ID: a})
	}
}

// storedVersions is what a batch loaded, to write back only what changed.
type storedVersions struct {
	elements map[string]semantics.Versions
	groups   map[[2]string]semantics.Group
}

// loadVersions loads into g the versions of every vertex the batch names,
// of every edge it addresses or g holds, and of the groups its edge ops
// fall in.
func (s *Store) loadVersions(ctx context.Context, tx pgx.Tx, g *semantics.Graph, t semantics.Touched, edges map[string]graft.Edge) (*storedVersions, error) {
	keys := map[string]bool{}
	for id := range t.Vertices {
		keys[semantics.VertexKey(id)] = true
	}
	for r := range t.Natural {
		keys[semantics.EdgeKey(&graft.Edge{From: r[0], Label: r[1], To: r[2]})] = true
	}
	for id := range t.IDs {
		keys[semantics.EdgeKey(&graft.Edge{ID: id})] = true
	}
	for _, e := range edges {
		keys[semantics.EdgeKey(&e)] = true
	}
	var cols [4][]string
	for k := range keys {
		kind, a, b, c := versionRow(k)
		cols[0], cols[1], cols[2], cols[3] = append(cols[0], kind), append(cols[1], a), append(cols[2], b), append(cols[3], c)
	}
	st := &storedVersions{elements: map[string]semantics.Versions{}, groups: map[[2]string]semantics.Group{}}
	rows, err := tx.Query(ctx, sqlLoadVersions, cols[0], cols[1], cols[2], cols[3])
	if err != nil {
		return nil, wrap(err, -1, "%s: read versions", s.endpoint)
	}
	for rows.Next() {
		var kind, a, b, c, raw string
		var v semantics.Versions
		if err := rows.Scan(&kind, &a, &b, &c, &v.Up, &v.Floor, &raw); err != nil {
			rows.Close()
			return nil, wrap(err, -1, "%s: read versions", s.endpoint)
		}
		if err := json.Unmarshal([]byte(raw), &v.Props); err != nil {
			rows.Close()
			return nil, graft.NewError(graft.Fatal, fmt.Errorf("%s: stored property versions %.60q do not decode: %w", s.endpoint, raw, err))
		}
		k := versionKey(kind, a, b, c)
		g.PutVersions(k, v)
		st.elements[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, -1, "%s: read versions", s.endpoint)
	}

	groups := map[[2]string]bool{}
	for k := range t.Groups {
		groups[k] = true
	}
	for r := range t.Natural {
		groups[[2]string{r[0], r[1]}] = true
	}
	var src, label []string
	for k := range groups {
		src, label = append(src, k[0]), append(label, k[1])
	}
	rows, err = tx.Query(ctx, sqlLoadGroupVersions, src, label)
	if err != nil {
		return nil, wrap(err, -1, "%s: read group versions", s.endpoint)
	}
	defer rows.Close()
	for rows.Next() {
		var from, lbl, raw string
		var gr semantics.Group
		if err := rows.Scan(&from, &lbl, &gr.Newest, &raw); err != nil {
			return nil, wrap(err, -1, "%s: read group versions", s.endpoint)
		}
		if err := json.Unmarshal([]byte(raw), &gr.Named); err != nil {
			return nil, graft.NewError(graft.Fatal, fmt.Errorf("%s: stored group versions %.60q do not decode: %w", s.endpoint, raw, err))
		}
		g.PutGroup(from, lbl, gr)
		st.groups[[2]string{from, lbl}] = gr
	}
	return st, rows.Err()
}

// saveVersions queues the rows g changed since st was loaded.
func saveVersions(batch *pgx.Batch, g *semantics.Graph, st *storedVersions) {
	var cols [4][]string
	var up, floor []int64
	var props []string
	for k, v := range g.AllVersions() {
		if old, ok := st.elements[k]; ok && old.Up == v.Up && old.Floor == v.Floor && maps.Equal(old.Props, v.Props) {
			continue
		}
		kind, a, b, c := versionRow(k)
		cols[0], cols[1], cols[2], cols[3] = append(cols[0], kind), append(cols[1], a), append(cols[2], b), append(cols[3], c)
		up, floor = append(up, v.Up), append(floor, v.Floor)
		props = append(props, jsonOf(v.Props))
	}
	if len(up) > 0 {
		batch.Queue(sqlSaveVersions, cols[0], cols[1], cols[2], cols[3], up, floor, props)
	}
	var src, label, named []string
	var newest []int64
	for k, gr := range g.AllGroups() {
		if old, ok := st.groups[k]; ok && old.Newest == gr.Newest && maps.Equal(old.Named, gr.Named) {
			continue
		}
		src, label = append(src, k[0]), append(label, k[1])
		newest, named = append(newest, gr.Newest), append(named, jsonOf(gr.Named))
	}
	if len(src) > 0 {
		batch.Queue(sqlSaveGroupVersions, src, label, newest, named)
	}
}

func jsonOf(m map[string]int64) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map of strings to integers always encodes
	return string(b)
}

// deletedByVersioned returns the vertices versioned writes delete.
func deletedByVersioned(ws []*graft.Write) []string {
	var ids []string
	for _, w := range ws {
		if w.Version == 0 {
			continue
		}
		for i := range w.Ops {
			if w.Ops[i].Kind == graft.DeleteVertex {
				ids = append(ids, w.Ops[i].ID)
			}
		}
	}
	return ids
}
