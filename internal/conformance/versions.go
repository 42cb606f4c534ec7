package conformance

import (
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/model"
)

// versionCases: writes with versions, arriving out of version order. want
// is the graph the writes give applied in version order (docs/DESIGN.md,
// "Versions"); a sink without version guards (Target.NoVersions) must
// instead apply them as they come, as the model does ignoring versions.
var versionCases = []sinkCase{
	{
		name: "an older upsert after a newer one sets only what the newer did not",
		steps: []step{
			ok(`{"version":5,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":2,"q":1}}]}`),
		},
		want: `{"type":"vertex","id":"v","label":"x","props":{"p":1,"q":1}}`,
	},
	{
		name: "equal versions apply in the order they come",
		steps: []step{
			ok(`{"version":5,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}}]}`),
			ok(`{"version":5,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":2}}]}`),
		},
		want: `{"type":"vertex","id":"v","label":"x","props":{"p":2}}`,
	},
	{
		name: "an older upsert after a newer delete does not resurrect",
		steps: []step{
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}},{"op":"upsertVertex","id":"w","label":"x"},
				{"op":"upsertEdge","label":"linkedTo","from":"w","to":"v"}]}`),
			ok(`{"version":5,"ops":[{"op":"deleteVertex","id":"v"}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":3}},{"op":"upsertEdge","label":"linkedLate","from":"w","to":"v"}]}`),
		},
		want: `{"type":"vertex","id":"w","label":"x","props":{}}`,
	},
	{
		name: "an older delete keeps what newer writes set",
		steps: []step{
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}},{"op":"upsertVertex","id":"w","label":"x"},
				{"op":"upsertEdge","label":"linkedBefore","from":"w","to":"v"}]}`),
			ok(`{"version":6,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"q":6}},{"op":"upsertEdge","label":"linkedAfter","from":"w","to":"v"}]}`),
			ok(`{"version":4,"ops":[{"op":"deleteVertex","id":"v"}]}`),
		},
		want: `{"type":"vertex","id":"v","label":"x","props":{"q":6}}
{"type":"vertex","id":"w","label":"x","props":{}}
{"type":"edge","label":"linkedAfter","from":"w","to":"v","props":{}}`,
	},
	{
		name: "a dropped property is not set again by an older write",
		steps: []step{
			ok(`{"version":2,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1,"q":1}}]}`),
			ok(`{"version":5,"ops":[{"op":"dropProps","element":"vertex","id":"v","keys":["p"]}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":3}}]}`),
		},
		want: `{"type":"vertex","id":"v","label":"x","props":{"q":1}}`,
	},
	{
		name: "a property changes type only by version",
		steps: []step{
			ok(`{"version":2,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1}}]}`),
			ok(`{"version":4,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":1.5}}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"p":"three"}}]}`),
		},
		want:        `{"type":"vertex","id":"v","label":"x","props":{"p":1.5}}`,
		changesType: true,
	},
	{
		name: "replaceEdges leaves out an older upsert of a target it did not name",
		steps: []step{
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"s","label":"x"},{"op":"upsertVertex","id":"t1","label":"x"},{"op":"upsertVertex","id":"t2","label":"x"}]}`),
			ok(`{"version":4,"ops":[{"op":"replaceEdges","label":"linkedTo","from":"s","to":["t1"]}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertEdge","label":"linkedTo","from":"s","to":"t2","props":{"p":3}},{"op":"upsertEdge","label":"linkedTo","from":"s","to":"t1","props":{"p":3}}]}`),
		},
		want: `{"type":"vertex","id":"s","label":"x","props":{}}
{"type":"vertex","id":"t1","label":"x","props":{}}
{"type":"vertex","id":"t2","label":"x","props":{}}
{"type":"edge","label":"linkedTo","from":"s","to":"t1","props":{"p":3}}`,
	},
	{
		name: "an older replaceEdges does not create an edge a newer write deleted",
		steps: []step{
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"s","label":"x"},{"op":"upsertVertex","id":"t","label":"x"},{"op":"upsertVertex","id":"u","label":"x"}]}`),
			ok(`{"version":5,"ops":[{"op":"deleteEdge","label":"linkedTo","from":"s","to":"t"}]}`),
			ok(`{"version":3,"ops":[{"op":"replaceEdges","label":"linkedTo","from":"s","to":["t","u"]}]}`),
		},
		want: `{"type":"vertex","id":"s","label":"x","props":{}}
{"type":"vertex","id":"t","label":"x","props":{}}
{"type":"vertex","id":"u","label":"x","props":{}}
{"type":"edge","label":"linkedTo","from":"s","to":"u","props":{}}`,
	},
	{
		name: "an edge deleted by a newer write stays deleted",
		steps: []step{
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"s","label":"x"},{"op":"upsertVertex","id":"t","label":"x"}]}`),
			ok(`{"version":5,"ops":[{"op":"deleteEdge","label":"linkedTo","from":"s","to":"t"}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertEdge","label":"linkedTo","from":"s","to":"t","props":{"p":3}}]}`),
		},
		want: `{"type":"vertex","id":"s","label":"x","props":{}}
{"type":"vertex","id":"t","label":"x","props":{}}`,
	},
	{
		name: "a label change replayed whole fails nothing",
		steps: []step{
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"p":1}}]}`),
			ok(`{"version":2,"ops":[{"op":"deleteVertex","id":"a"}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertVertex","id":"a","label":"y","props":{"q":3}}]}`),
			ok(`{"version":1,"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"p":1}}]}`),
			ok(`{"version":2,"ops":[{"op":"deleteVertex","id":"a"}]}`),
			ok(`{"version":3,"ops":[{"op":"upsertVertex","id":"a","label":"y","props":{"q":3}}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"y","props":{"q":3}}`,
	},
}

// runVersionCases runs versionCases: on a sink with guards, each case, then
// each case with its writes applied again after the last (a replay); on a
// sink without, each case against the model applying the writes as they
// come (what the sink promises then).
func runVersionCases(t *testing.T, open Open) {
	for _, c := range versionCases {
		t.Run("versions: "+c.name, func(t *testing.T) {
			t.Parallel()
			tg := open(t)
			if c.changesType && tg.TypedKeys {
				// A key keeps the type of its first value (JanusGraph):
				// the write of another type is refused, as the
				// conformance case on type changes shows; not a version
				// matter.
				return
			}
			if tg.NoVersions != "" {
				unguarded := model.New()
				for i, s := range c.steps {
					var ws []*graft.Write
					for _, l := range s.writes {
						w, _ := graft.Decode([]byte(l), "", graft.DefaultLimits)
						ws = append(ws, w)
					}
					merr := unguarded.ApplyBatch(ws)
					err := applyStep(t, tg.Sink, s.writes)
					if (err == nil) != (merr == nil) || (err != nil && graft.ClassOf(err) != graft.ClassOf(merr)) {
						t.Fatalf("step %d without versions: %v, the model ignoring versions: %v", i, err, merr)
					}
				}
				CheckModel(t, tg.Reader, unguarded)
				return
			}
			for i, s := range c.steps {
				checkStep(t, i, s, applyStep(t, tg.Sink, s.writes))
			}
			CheckExport(t, tg.Reader, c.want)
			for i, s := range c.steps {
				checkStep(t, i, s, applyStep(t, tg.Sink, s.writes))
			}
			CheckExport(t, tg.Reader, c.want)
		})
	}
}
