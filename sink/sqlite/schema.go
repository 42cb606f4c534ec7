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
	-- An edge is keyed by (src, label, dst, eid): eid is '' for an edge
	-- identified by (label, from, to) and its explicit id otherwise. One
	-- b-tree holds the rows and serves out-edges; edges_in serves in-edges;
	-- edges_id holds explicit ids only.
	CREATE TABLE edges (
		src   TEXT NOT NULL REFERENCES vertices(id) ON DELETE CASCADE,
		label TEXT NOT NULL,
		dst   TEXT NOT NULL REFERENCES vertices(id) ON DELETE CASCADE,
		eid   TEXT NOT NULL DEFAULT '',
		props TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (src, label, dst, eid)
	) WITHOUT ROWID;
	CREATE UNIQUE INDEX edges_id ON edges(eid) WHERE eid <> '';
	CREATE INDEX edges_in ON edges(dst, label);`,
	// 2: fencing tokens (graft.Batch.Fence): the highest token committed
	// per write key.
	`CREATE TABLE fences (
		key   TEXT PRIMARY KEY,
		token INTEGER NOT NULL
	) WITHOUT ROWID;`,
	// 3: versions (versions.go): per vertex (kind v, a = id), natural edge
	// (n: src, label, dst) or edge with an id (i: a = id), the highest
	// version that upserted it, the highest that deleted it, and per
	// property the version of its last change (JSON); per (src, label)
	// group, the newest replaceEdges and per named target the newest
	// replace that left it out (JSON). Rows outlive their elements.
	`CREATE TABLE graft_versions (
		kind  TEXT NOT NULL,
		a     TEXT NOT NULL,
		b     TEXT NOT NULL DEFAULT '',
		c     TEXT NOT NULL DEFAULT '',
		up    INTEGER NOT NULL,
		floor INTEGER NOT NULL,
		props TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (kind, a, b, c)
	) WITHOUT ROWID;
	CREATE TABLE graft_groups (
		src    TEXT NOT NULL,
		label  TEXT NOT NULL,
		newest INTEGER NOT NULL,
		named  TEXT NOT NULL DEFAULT '{}',
		PRIMARY KEY (src, label)
	) WITHOUT ROWID;`,
}

// Migrations returns the schema migrations, in order (for tests of upgrades).
func Migrations() []string { return migrations }

// The statements of the write path, prepared once per connection.
const (
	// No row changes when the vertex exists with another label: the caller
	// reports a label conflict.
	stmtUpsertVertex = `INSERT INTO vertices(id, label, props) VALUES (?1, ?2, ?3)
		ON CONFLICT(id) DO UPDATE SET props = json_patch(props, excluded.props) WHERE label = excluded.label`
	stmtVertexLabel   = `SELECT label FROM vertices WHERE id = ?1`
	stmtDeleteVertex  = `DELETE FROM vertices WHERE id = ?1`
	stmtVertexProps   = `SELECT props FROM vertices WHERE id = ?1`
	stmtSetVertexProp = `UPDATE vertices SET props = ?2 WHERE id = ?1`

	stmtUpsertEdge = `INSERT INTO edges(label, src, dst, props) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT(src, label, dst, eid) DO UPDATE SET props = json_patch(props, excluded.props)`
	stmtUpsertEdgeID = `INSERT INTO edges(eid, label, src, dst, props) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT(eid) WHERE eid <> '' DO UPDATE SET props = CASE WHEN label = excluded.label AND src = excluded.src AND dst = excluded.dst
			THEN json_patch(props, excluded.props) ELSE props END
		RETURNING label, src, dst`
	// ?1 label, ?2 src, ?3 dst, ?4 eid ('' for a natural edge)
	stmtFindEdge     = `SELECT props FROM edges WHERE src = ?2 AND label = ?1 AND dst = ?3 AND eid = ?4`
	stmtFindEdgeID   = `SELECT label, src, dst FROM edges WHERE eid = ?1 AND eid <> ''`
	stmtDeleteEdge   = `DELETE FROM edges WHERE src = ?2 AND label = ?1 AND dst = ?3 AND eid = ?4`
	stmtSetEdgeProps = `UPDATE edges SET props = ?5 WHERE src = ?2 AND label = ?1 AND dst = ?3 AND eid = ?4`

	// replaceEdges: ?1 from, ?2 label, ?3 JSON array of target ids.
	stmtReplaceDelete = `DELETE FROM edges WHERE src = ?1 AND label = ?2
		AND dst NOT IN (SELECT value FROM json_each(?3))`
	stmtReplaceInsert = `INSERT INTO edges(label, src, dst, props)
		SELECT ?2, ?1, j.value, '{}' FROM json_each(?3) AS j
		WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.src = ?1 AND e.label = ?2 AND e.dst = j.value)`

	stmtVerticesIn = `SELECT id FROM vertices WHERE id IN (SELECT value FROM json_each(?1))`

	// ?1 key, ?2 token
	stmtFenceGet = `SELECT token FROM fences WHERE key = ?1`
	stmtFenceSet = `INSERT INTO fences(key, token) VALUES (?1, ?2)
		ON CONFLICT(key) DO UPDATE SET token = max(token, excluded.token)`
)
