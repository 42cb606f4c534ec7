package sqlite

// migrations are applied in order; PRAGMA user_version holds how many have
// run. Never edit one that has shipped: append a new one.
var migrations = []string{
	// 1: vertices and edges. Properties are a canonical JSON object per
	// element (see graft.Props.AppendJSON); SQLite keeps number literals as
	// written, so int64 and float64 values come back exactly.
	`CREATE TABLE vertices (
		id    TEXT PRIMARY KEY,
		label TEXT NOT NULL,
		props TEXT NOT NULL DEFAULT '{}'
	) WITHOUT ROWID;
	CREATE TABLE edges (
		seq   INTEGER PRIMARY KEY,
		id    TEXT UNIQUE,
		label TEXT NOT NULL,
		src   TEXT NOT NULL REFERENCES vertices(id) ON DELETE CASCADE,
		dst   TEXT NOT NULL REFERENCES vertices(id) ON DELETE CASCADE,
		props TEXT NOT NULL DEFAULT '{}'
	);
	CREATE UNIQUE INDEX edges_natural ON edges(src, label, dst) WHERE id IS NULL;
	CREATE INDEX edges_out ON edges(src, label, dst);
	CREATE INDEX edges_in ON edges(dst, label);`,
}

// The statements of the write path, prepared once per connection.
const (
	stmtUpsertVertex = `INSERT INTO vertices(id, label, props) VALUES (?1, ?2, ?3)
		ON CONFLICT(id) DO UPDATE SET props = CASE WHEN label = excluded.label THEN json_patch(props, excluded.props) ELSE props END
		RETURNING label`
	stmtDeleteVertex  = `DELETE FROM vertices WHERE id = ?1`
	stmtVertexProps   = `SELECT props FROM vertices WHERE id = ?1`
	stmtSetVertexProp = `UPDATE vertices SET props = ?2 WHERE id = ?1`

	stmtUpsertEdge = `INSERT INTO edges(label, src, dst, props) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT(src, label, dst) WHERE id IS NULL DO UPDATE SET props = json_patch(props, excluded.props)`
	stmtUpsertEdgeID = `INSERT INTO edges(id, label, src, dst, props) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT(id) DO UPDATE SET props = CASE WHEN label = excluded.label AND src = excluded.src AND dst = excluded.dst
			THEN json_patch(props, excluded.props) ELSE props END
		RETURNING label, src, dst`
	stmtFindEdge     = `SELECT seq, props FROM edges WHERE src = ?2 AND label = ?1 AND dst = ?3 AND id IS NULL`
	stmtFindEdgeID   = `SELECT seq, props, label, src, dst FROM edges WHERE id = ?1`
	stmtDeleteEdge   = `DELETE FROM edges WHERE seq = ?1`
	stmtSetEdgeProps = `UPDATE edges SET props = ?2 WHERE seq = ?1`

	// replaceEdges: ?1 from, ?2 label, ?3 JSON array of target ids.
	stmtReplaceDelete = `DELETE FROM edges WHERE src = ?1 AND label = ?2
		AND dst NOT IN (SELECT value FROM json_each(?3))`
	stmtReplaceInsert = `INSERT INTO edges(label, src, dst, props)
		SELECT ?2, ?1, j.value, '{}' FROM json_each(?3) AS j
		WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.src = ?1 AND e.label = ?2 AND e.dst = j.value)`

	stmtVerticesIn = `SELECT id FROM vertices WHERE id IN (SELECT value FROM json_each(?1))`
)
