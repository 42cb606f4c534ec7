package postgres

// migrations run in order inside one transaction each, under an advisory
// lock; graft_schema holds how many have run. Never edit a shipped one.
//
// The layout is the embedded store's (sink/sqlite/schema.go): vertices keyed
// by id, edges keyed by (src, label, dst, eid) with eid ” for an edge
// identified by (label, from, to), properties as one canonical JSON text per
// element — text, not jsonb: jsonb turns numbers into numeric, which prints
// 1e300 as 301 digits and loses the sign of -0.0.
var migrations = []string{
	`CREATE TABLE vertices (
		id    text PRIMARY KEY,
		label text NOT NULL,
		props text NOT NULL DEFAULT '{}'
	);
	CREATE TABLE edges (
		src   text NOT NULL REFERENCES vertices(id) ON DELETE CASCADE,
		label text NOT NULL,
		dst   text NOT NULL REFERENCES vertices(id) ON DELETE CASCADE,
		eid   text NOT NULL DEFAULT '',
		props text NOT NULL DEFAULT '{}',
		PRIMARY KEY (src, label, dst, eid)
	);
	CREATE INDEX edges_in ON edges (dst, label);
	CREATE UNIQUE INDEX edges_id ON edges (eid) WHERE eid <> '';`,
	// 2: fencing tokens (graft.Batch.Fence): the highest token committed
	// per write key (bytea: a key may hold any byte).
	`CREATE TABLE graft_fences (key bytea PRIMARY KEY, token bigint NOT NULL);`,
	// 3: versions (versions.go): per vertex (kind v, a = id), natural edge
	// (n: src, label, dst) or edge with an id (i: a = id), the highest
	// version that upserted it, the highest that deleted it, and per
	// property the version of its last change (JSON); per (src, label)
	// group, the newest replaceEdges and per named target the newest
	// replace that left it out (JSON).
	`CREATE TABLE graft_versions (
		kind  text NOT NULL,
		a     text NOT NULL,
		b     text NOT NULL DEFAULT '',
		c     text NOT NULL DEFAULT '',
		up    bigint NOT NULL,
		floor bigint NOT NULL,
		props text NOT NULL DEFAULT '{}',
		PRIMARY KEY (kind, a, b, c)
	);
	CREATE TABLE graft_groups (
		src    text NOT NULL,
		label  text NOT NULL,
		newest bigint NOT NULL,
		named  text NOT NULL DEFAULT '{}',
		PRIMARY KEY (src, label)
	);`,
}

// sqlFence records the batch's token for each key (sorted: a fixed lock
// order) unless a higher one is there; the keys it returns are those it
// could record. The rows stay locked until the transaction ends.
const sqlFence = `INSERT INTO graft_fences (key, token) SELECT unnest($1::bytea[]), $2
	ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token WHERE graft_fences.token <= EXCLUDED.token
	RETURNING key`

const (
	// Reads of the part of the graph a batch touches, locked.
	sqlLoadVertices = `SELECT id, label, props FROM vertices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`
	sqlLoadEdges    = `SELECT e.src, e.label, e.dst, e.eid, e.props FROM edges e
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(src, label, dst)
		  ON e.src = k.src AND e.label = k.label AND e.dst = k.dst AND e.eid = ''
		ORDER BY 1, 2, 3, 4 FOR UPDATE OF e`
	sqlLoadEdgesByID = `SELECT src, label, dst, eid, props FROM edges WHERE eid = ANY($1::text[]) AND eid <> '' ORDER BY 1, 2, 3, 4 FOR UPDATE`
	sqlLoadGroups    = `SELECT e.src, e.label, e.dst, e.eid, e.props FROM edges e
		JOIN unnest($1::text[], $2::text[]) AS k(src, label) ON e.src = k.src AND e.label = k.label
		ORDER BY 1, 2, 3, 4 FOR UPDATE OF e`

	// The effect of a batch, set-based.
	sqlDeleteVertices = `DELETE FROM vertices WHERE id = ANY($1::text[])`
	sqlUpsertVertices = `INSERT INTO vertices (id, label, props)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
		ON CONFLICT (id) DO UPDATE SET label = excluded.label, props = excluded.props`
	sqlDeleteEdges = `DELETE FROM edges e USING unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(src, label, dst, eid)
		WHERE e.src = k.src AND e.label = k.label AND e.dst = k.dst AND e.eid = k.eid`
	sqlUpsertEdges = `INSERT INTO edges (src, label, dst, eid, props)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
		ON CONFLICT (src, label, dst, eid) DO UPDATE SET props = excluded.props`
)
