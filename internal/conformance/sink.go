// Package conformance holds the test suites every Sink (and, later, every
// Source) runs: the same cases, the same expectations, whatever the
// technology behind it.
package conformance

import (
	"bufio"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/model"
)

// Target is a sink under test and the reader of the graph it writes.
type Target struct {
	Sink   graft.Sink
	Reader graft.Reader
	// NoNUL: the sink cannot store a NUL byte in ids and labels
	// (PostgreSQL text); it must reject such a write as permanent instead.
	NoNUL bool
	// NoRollback: the store has no transactions (TinkerGraph), so a failed
	// batch may leave its earlier ops applied; the final graph of a case
	// with a failing step is not compared (errors and indexes still are).
	NoRollback bool
	// ReservedChars: characters the store refuses in labels and property
	// keys (JanusGraph: " { }); a write using one must fail as permanent.
	ReservedChars string
	// TypedKeys: a property key takes the type of its first value, and
	// refuses others (JanusGraph); the case that changes a key's type skips.
	TypedKeys bool
	// SharedNames: edge labels and property keys share one namespace
	// (JanusGraph's relation types, kept across emptyings of the graph), so
	// the cases never use one name for both.
	SharedNames bool
	// NoFencing says why the sink does not check fencing tokens
	// (graft.Batch.Fence) yet; empty: it does, and the case runs.
	NoFencing string
	// NoVersions says why the sink does not guard on versions yet
	// (docs/DESIGN.md, "Versions"); empty: it does. Without, the version
	// cases check that it applies versioned writes as they come.
	NoVersions string
}

// Open returns a fresh, empty target for one test.
type Open func(t *testing.T) Target

type step struct {
	writes []string    // applied in one batch
	class  graft.Class // expected error class, 0 for success
	index  int         // expected Error.Index when class != 0
}

type sinkCase struct {
	name  string
	steps []step
	want  string // the export of the final graph, one element per line, in any order
	// changesType: a property takes values of several types (not run on a
	// store with TypedKeys).
	changesType bool
}

// fails reports whether a step of the case fails.
func (c sinkCase) fails() bool {
	for _, s := range c.steps {
		if s.class != 0 {
			return true
		}
	}
	return false
}

func ok(writes ...string) step { return step{writes: writes} }
func fails(class graft.Class, index int, writes ...string) step {
	return step{writes: writes, class: class, index: index}
}

// Hostile strings: stored verbatim as ids, labels, property names and values.
var hostile = []string{
	`'; DROP TABLE vertices; --`,
	`" OR 1=1 --`,
	`g.V().drop().iterate()`,
	`'), g.V().drop(), ('`,
	`} ; DELETE WHERE { ?s ?p ?o } #`,
	`<http://example.org/x> "lit"@en`,
	"line one\nline two\r\n\ttab",
	`back\slash \\ \" \u0000`,
	"nul\x00byte",
	`unicode: grüße 日本語 🎉 ` + "\u2028\u202e",
	`$.a[0]`,
	`%s %d ${ENV} {{.}}`,
}

var sinkCases = []sinkCase{
	{
		name: "upsertVertex creates, then sets only the given props",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"o1","label":"organization","props":{"name":"org 1","tier":3}}]}`),
			ok(`{"ops":[{"op":"upsertVertex","id":"o1","label":"organization","props":{"tier":4,"active":true}}]}`),
			ok(`{"ops":[{"op":"upsertVertex","id":"o2","label":"organization"}]}`),
		},
		want: `{"type":"vertex","id":"o1","label":"organization","props":{"active":true,"name":"org 1","tier":4}}
{"type":"vertex","id":"o2","label":"organization","props":{}}`,
	},
	{
		name: "a label conflict in the third op leaves the first two unapplied",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"d1","label":"device"}]}`),
			fails(graft.Permanent, 0, `{"ops":[
				{"op":"upsertVertex","id":"a","label":"device"},
				{"op":"upsertVertex","id":"d1","label":"device","props":{"x":1}},
				{"op":"upsertVertex","id":"d1","label":"software"}]}`),
		},
		want: `{"type":"vertex","id":"d1","label":"device","props":{}}`,
	},
	{
		name: "a failing write fails its whole batch and is named by index",
		steps: []step{
			fails(graft.MissingEndpoint, 1,
				`{"ops":[{"op":"upsertVertex","id":"a","label":"v"}]}`,
				`{"ops":[{"op":"upsertEdge","label":"e","from":"a","to":"nowhere"}]}`,
				`{"ops":[{"op":"upsertVertex","id":"b","label":"v"}]}`),
		},
		want: ``,
	},
	{
		// The index names the write, not the op: write 1 fails at its
		// second op, the batch's fifth.
		name: "a failing write of a multi-op batch is named by its write index",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"d","label":"device"}]}`),
			fails(graft.Permanent, 1,
				`{"ops":[{"op":"upsertVertex","id":"a","label":"v"},{"op":"upsertVertex","id":"b","label":"v"},{"op":"upsertEdge","label":"e","from":"a","to":"b"}]}`,
				`{"ops":[{"op":"upsertVertex","id":"c","label":"v"},{"op":"upsertVertex","id":"d","label":"software"}]}`,
				`{"ops":[{"op":"upsertVertex","id":"z","label":"v"}]}`),
			fails(graft.MissingEndpoint, 2,
				`{"ops":[{"op":"upsertVertex","id":"a","label":"v"}]}`,
				`{"ops":[{"op":"upsertVertex","id":"b","label":"v"},{"op":"upsertVertex","id":"c","label":"v"},{"op":"upsertEdge","label":"e","from":"b","to":"c"}]}`,
				`{"ops":[{"op":"upsertVertex","id":"x","label":"v"},{"op":"upsertEdge","label":"e","from":"x","to":"nowhere"}]}`),
		},
		want: `{"type":"vertex","id":"d","label":"device","props":{}}`,
	},
	{
		name: "an edge into a vertex deleted and recreated in the same write is re-inserted",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v"},{"op":"upsertVertex","id":"b","label":"v","props":{"old":true}},
				{"op":"upsertEdge","label":"e","from":"a","to":"b","props":{"n":1}},{"op":"upsertEdge","label":"f","from":"b","to":"a"}]}`),
			ok(`{"ops":[{"op":"deleteVertex","id":"b"},{"op":"upsertVertex","id":"b","label":"v"},
				{"op":"upsertEdge","label":"e","from":"a","to":"b","props":{"n":2}}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"v","props":{}}
{"type":"vertex","id":"b","label":"v","props":{}}
{"type":"edge","label":"e","from":"a","to":"b","props":{"n":2}}`,
	},
	{
		// The edge comes back exactly as it was: a sink that writes only
		// what differs from before must still write it (its old row went
		// with the vertex).
		name: "an edge re-inserted unchanged into a vertex deleted and recreated is there",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v"},{"op":"upsertVertex","id":"b","label":"v"},
				{"op":"upsertEdge","label":"e","from":"a","to":"b","props":{"n":1}}]}`),
			ok(`{"ops":[{"op":"deleteVertex","id":"b"},{"op":"upsertVertex","id":"b","label":"v"},
				{"op":"upsertEdge","label":"e","from":"a","to":"b","props":{"n":1}}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"v","props":{}}
{"type":"vertex","id":"b","label":"v","props":{}}
{"type":"edge","label":"e","from":"a","to":"b","props":{"n":1}}`,
	},
	{
		name: "upsertEdge creates and merges props; a later write in the batch sees an earlier one",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"d1","label":"device"},{"op":"upsertVertex","id":"s1","label":"software"}]}`,
				`{"ops":[{"op":"upsertEdge","label":"installed","from":"d1","to":"s1","props":{"at":1}}]}`,
				`{"ops":[{"op":"upsertEdge","label":"installed","from":"d1","to":"s1","props":{"by":"mdm"}}]}`),
		},
		want: `{"type":"vertex","id":"d1","label":"device","props":{}}
{"type":"vertex","id":"s1","label":"software","props":{}}
{"type":"edge","label":"installed","from":"d1","to":"s1","props":{"at":1,"by":"mdm"}}`,
	},
	{
		name: "upsertEdge to a missing vertex is a missing endpoint",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"d1","label":"device"}]}`),
			fails(graft.MissingEndpoint, 0, `{"ops":[{"op":"upsertEdge","label":"installed","from":"d1","to":"s9"}]}`),
			fails(graft.MissingEndpoint, 0, `{"ops":[{"op":"upsertEdge","label":"installed","from":"s9","to":"d1"}]}`),
		},
		want: `{"type":"vertex","id":"d1","label":"device","props":{}}`,
	},
	{
		name: "edges with explicit ids are distinct from the natural edge and keep their endpoints",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v"},{"op":"upsertVertex","id":"b","label":"v"},
				{"op":"upsertEdge","label":"knows","from":"a","to":"b","props":{"n":0}},
				{"op":"upsertEdge","id":"e1","label":"knows","from":"a","to":"b","props":{"n":1}},
				{"op":"upsertEdge","id":"e2","label":"knows","from":"a","to":"b","props":{"n":2}},
				{"op":"upsertEdge","id":"e1","label":"knows","from":"a","to":"b","props":{"m":1}}]}`),
			fails(graft.Permanent, 0, `{"ops":[{"op":"upsertEdge","id":"e1","label":"knows","from":"b","to":"a"}]}`),
			ok(`{"ops":[{"op":"deleteEdge","id":"e2","label":"knows","from":"a","to":"b"}]}`),
			fails(graft.Permanent, 0, `{"ops":[{"op":"deleteEdge","id":"e1","label":"likes","from":"a","to":"b"}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"v","props":{}}
{"type":"vertex","id":"b","label":"v","props":{}}
{"type":"edge","label":"knows","from":"a","to":"b","props":{"n":0}}
{"type":"edge","id":"e1","label":"knows","from":"a","to":"b","props":{"m":1,"n":1}}`,
	},
	{
		name: "deleteVertex removes the vertex and its edges in both directions; absent is a no-op",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v"},{"op":"upsertVertex","id":"b","label":"v"},{"op":"upsertVertex","id":"c","label":"v"},
				{"op":"upsertEdge","label":"e","from":"a","to":"b"},{"op":"upsertEdge","label":"e","from":"b","to":"c"},
				{"op":"upsertEdge","id":"x","label":"f","from":"c","to":"b"},{"op":"upsertEdge","label":"e","from":"a","to":"c"}]}`),
			ok(`{"ops":[{"op":"deleteVertex","id":"b"},{"op":"deleteVertex","id":"never"}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"v","props":{}}
{"type":"vertex","id":"c","label":"v","props":{}}
{"type":"edge","label":"e","from":"a","to":"c","props":{}}`,
	},
	{
		name: "deleteVertex then upsertVertex with another label in one write",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v","props":{"x":1}}]}`),
			ok(`{"ops":[{"op":"deleteVertex","id":"a"},{"op":"upsertVertex","id":"a","label":"w"}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"w","props":{}}`,
	},
	{
		name: "deleteEdge by label, from, to; absent is a no-op",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v"},{"op":"upsertVertex","id":"b","label":"v"},
				{"op":"upsertEdge","label":"e","from":"a","to":"b"},{"op":"upsertEdge","label":"f","from":"a","to":"b"}]}`),
			ok(`{"ops":[{"op":"deleteEdge","label":"e","from":"a","to":"b"},{"op":"deleteEdge","label":"e","from":"b","to":"a"},
				{"op":"deleteEdge","label":"e","from":"zz","to":"yy"}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"v","props":{}}
{"type":"vertex","id":"b","label":"v","props":{}}
{"type":"edge","label":"f","from":"a","to":"b","props":{}}`,
	},
	{
		name: "replaceEdges removes others, creates missing ones, kept ones keep their props",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"d","label":"device"},{"op":"upsertVertex","id":"s1","label":"sw"},
				{"op":"upsertVertex","id":"s2","label":"sw"},{"op":"upsertVertex","id":"s3","label":"sw"},
				{"op":"upsertEdge","label":"installed","from":"d","to":"s1","props":{"at":1}},
				{"op":"upsertEdge","label":"installed","from":"d","to":"s2"},
				{"op":"upsertEdge","label":"trusts","from":"d","to":"s2"},
				{"op":"upsertEdge","label":"installed","from":"s3","to":"d"}]}`),
			ok(`{"ops":[{"op":"replaceEdges","from":"d","label":"installed","to":["s1","s3","s3"]}]}`),
		},
		want: `{"type":"vertex","id":"d","label":"device","props":{}}
{"type":"vertex","id":"s1","label":"sw","props":{}}
{"type":"vertex","id":"s2","label":"sw","props":{}}
{"type":"vertex","id":"s3","label":"sw","props":{}}
{"type":"edge","label":"installed","from":"d","to":"s1","props":{"at":1}}
{"type":"edge","label":"installed","from":"d","to":"s3","props":{}}
{"type":"edge","label":"trusts","from":"d","to":"s2","props":{}}
{"type":"edge","label":"installed","from":"s3","to":"d","props":{}}`,
	},
	{
		name: "replaceEdges with an empty list removes every edge of the label; a missing target fails",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"d","label":"device"},{"op":"upsertVertex","id":"s1","label":"sw"},
				{"op":"upsertEdge","label":"installed","from":"d","to":"s1"},
				{"op":"upsertEdge","id":"k","label":"installed","from":"d","to":"s1"}]}`),
			fails(graft.MissingEndpoint, 0, `{"ops":[{"op":"replaceEdges","from":"d","label":"installed","to":["s1","s404"]}]}`),
			ok(`{"ops":[{"op":"replaceEdges","from":"d","label":"installed","to":[]},
				{"op":"replaceEdges","from":"nobody","label":"installed","to":[]}]}`),
		},
		want: `{"type":"vertex","id":"d","label":"device","props":{}}
{"type":"vertex","id":"s1","label":"sw","props":{}}`,
	},
	{
		name: "dropProps on a vertex and on an edge; absent elements and keys are no-ops",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"a","label":"v","props":{"x":1,"y":2,"z":3}},{"op":"upsertVertex","id":"b","label":"v"},
				{"op":"upsertEdge","label":"e","from":"a","to":"b","props":{"p":1,"q":2}},
				{"op":"upsertEdge","id":"e9","label":"e","from":"a","to":"b","props":{"p":1,"q":2}}]}`),
			ok(`{"ops":[{"op":"dropProps","element":"vertex","id":"a","keys":["x","z","nope"]},
				{"op":"dropProps","element":"edge","label":"e","from":"a","to":"b","keys":["p"]},
				{"op":"dropProps","element":"edge","id":"e9","label":"e","from":"a","to":"b","keys":["q"]},
				{"op":"dropProps","element":"vertex","id":"ghost","keys":["x"]},
				{"op":"dropProps","element":"edge","label":"e","from":"b","to":"a","keys":["x"]}]}`),
		},
		want: `{"type":"vertex","id":"a","label":"v","props":{"y":2}}
{"type":"vertex","id":"b","label":"v","props":{}}
{"type":"edge","label":"e","from":"a","to":"b","props":{"q":2}}
{"type":"edge","id":"e9","label":"e","from":"a","to":"b","props":{"p":1}}`,
	},
	{
		name: "int64 extremes and floats come back exactly",
		steps: []step{
			ok(`{"ops":[{"op":"upsertVertex","id":"n","label":"num","props":{
				"max":9223372036854775807,"min":-9223372036854775808,"zero":0,"big":9007199254740993,
				"one":1.0,"tenth":0.1,"huge":1e300,"tiny":5e-324,"negzero":-0.0,"pi":3.141592653589793,
				"long":123456789.123456789,"t":true,"no":false,"s":"9223372036854775808"}}]}`),
		},
		want: `{"type":"vertex","id":"n","label":"num","props":{"big":9007199254740993,"huge":1e+300,"long":1.2345678912345679e+08,"max":9223372036854775807,"min":-9223372036854775808,"negzero":-0.0,"no":false,"one":1.0,"pi":3.141592653589793,"s":"9223372036854775808","t":true,"tenth":0.1,"tiny":5e-324,"zero":0}}`,
	},
}

// RunSink runs the conformance suite against fresh targets from open.
func RunSink(t *testing.T, open Open) {
	runVersionCases(t, open)
	for _, c := range sinkCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tg := open(t)
			for i, s := range c.steps {
				err := applyStep(t, tg.Sink, s.writes)
				checkStep(t, i, s, err)
			}
			if tg.NoRollback && c.fails() {
				return
			}
			CheckExport(t, tg.Reader, c.want)
		})
	}
	for _, c := range sinkCases {
		t.Run("applied twice: "+c.name, func(t *testing.T) {
			t.Parallel()
			tg := open(t)
			for i, s := range c.steps {
				checkStep(t, i, s, applyStep(t, tg.Sink, s.writes))
				if s.class == 0 {
					// Invariant 3: a write applied again changes nothing.
					checkStep(t, i, s, applyStep(t, tg.Sink, s.writes))
					for _, w := range s.writes {
						mustApply(t, tg.Sink, w, w)
					}
				}
			}
			if tg.NoRollback && c.fails() {
				return
			}
			CheckExport(t, tg.Reader, c.want)
		})
	}
	t.Run("hostile strings are stored verbatim", func(t *testing.T) {
		t.Parallel()
		tg := open(t)
		model := model.New()
		for i, h := range hostile {
			id, label, key := h+" id", h+" label", h
			if tg.SharedNames {
				key = h + " key"
			}
			w := &graft.Write{Key: h, Ops: []graft.Op{
				{Kind: graft.UpsertVertex, ID: id, Label: label, Props: graft.Props{key: graft.String(h), "k" + h: graft.Int(int64(i))}},
				{Kind: graft.UpsertVertex, ID: h, Label: h},
				{Kind: graft.UpsertEdge, Label: h, From: id, To: h, Props: graft.Props{key: graft.String(h)}},
				{Kind: graft.UpsertEdge, ID: h, Label: label, From: h, To: id},
				{Kind: graft.ReplaceEdges, Label: h + "r", From: h, Targets: []string{id, h}},
			}}
			err := tg.Sink.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w}})
			if (tg.NoNUL && strings.IndexByte(h, 0) >= 0) || (tg.ReservedChars != "" && strings.ContainsAny(h, tg.ReservedChars)) {
				if graft.ClassOf(err) != graft.Permanent || graft.IndexOf(err) != 0 {
					t.Fatalf("write %d (%q) with a character the store refuses: got %v, want a permanent error for write 0", i, h, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("write %d (%q): %v", i, h, err)
			}
			if err := model.ApplyWrite(w); err != nil {
				t.Fatal(err)
			}
			v, err := tg.Reader.Vertex(context.Background(), id)
			if err != nil || v.Label != label || v.Props[key] != graft.String(h) {
				t.Fatalf("vertex %q: got %+v, %v", id, v, err)
			}
			es, err := tg.Reader.Edges(context.Background(), h, graft.Both, h)
			if err != nil || len(es) != 1 || es[0].From != id || es[0].Props[key] != graft.String(h) {
				t.Fatalf("edges of %q labelled %q: got %+v, %v", h, h, es, err)
			}
		}
		CheckModel(t, tg.Reader, model)
	})
	t.Run("a property changes type between writes, to values equal as numbers", func(t *testing.T) {
		t.Parallel()
		tg := open(t)
		if tg.TypedKeys {
			t.Skip("the store types a property key by its first value")
		}
		// Each value equal as a number to the one before it, of another
		// type: Virtuoso kept the old one when a request deleted it and
		// inserted the new (true came back as 1).
		for i, v := range []graft.Value{graft.Int(1), graft.Bool(true), graft.Float(1), graft.Int(1), graft.Bool(true), graft.String("true"),
			graft.Int(0), graft.Bool(false), graft.Float(0), graft.Bool(false), graft.Int(0), graft.Float(1), graft.Bool(true)} {
			w := &graft.Write{Key: "k", Ops: []graft.Op{
				{Kind: graft.UpsertVertex, ID: "a", Label: "v", Props: graft.Props{"x": v}},
				{Kind: graft.UpsertVertex, ID: "b", Label: "v"},
				{Kind: graft.UpsertEdge, Label: "e", From: "a", To: "b", Props: graft.Props{"x": v}},
			}}
			if err := tg.Sink.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w}}); err != nil {
				t.Fatalf("write %d (%#v): %v", i, v.Any(), err)
			}
			got, err := tg.Reader.Vertex(context.Background(), "a")
			if err != nil || got.Props["x"] != v {
				t.Fatalf("write %d: vertex property x = %#v (%v), want %#v", i, got.Props["x"].Any(), err, v.Any())
			}
			es, err := tg.Reader.Edges(context.Background(), "a", graft.Out, "e")
			if err != nil || len(es) != 1 || es[0].Props["x"] != v {
				t.Fatalf("write %d: edge property x = %+v (%v), want %#v", i, es, err, v.Any())
			}
		}
	})
	t.Run("fencing: a lower token than one committed is refused, and nothing applied", func(t *testing.T) {
		t.Parallel()
		tg := open(t)
		if tg.NoFencing != "" {
			t.Skip(tg.NoFencing)
		}
		ctx := context.Background()
		write := func(key, id string, n int64) *graft.Write {
			return &graft.Write{Key: key, Ops: []graft.Op{{Kind: graft.UpsertVertex, ID: id, Label: "v", Props: graft.Props{"n": graft.Int(n)}}}}
		}
		hostileKey := "k'; DROP TABLE graft_fences; --\x00"
		if err := tg.Sink.Apply(ctx, &graft.Batch{Fence: 7, Writes: []*graft.Write{write("a", "x", 1), write(hostileKey, "y", 1)}}); err != nil {
			t.Fatalf("token 7: %v", err)
		}
		// An older holder (token 5) of key a: refused, whole batch rolled back.
		err := tg.Sink.Apply(ctx, &graft.Batch{Fence: 5, Writes: []*graft.Write{write("b", "z", 1), write("a", "x", 2)}})
		if graft.ClassOf(err) != graft.Conflict || !errors.Is(err, graft.ErrFenced) {
			t.Fatalf("token 5 after 7: got %v, want a conflict wrapping ErrFenced", err)
		}
		if err := tg.Sink.Apply(ctx, &graft.Batch{Fence: 6, Writes: []*graft.Write{write(hostileKey, "y", 2)}}); !errors.Is(err, graft.ErrFenced) {
			t.Fatalf("token 6 on the hostile key after 7: got %v", err)
		}
		// The same token again (a retry by the holder), a newer one, and no
		// token at all (no locker) go through.
		for _, b := range []*graft.Batch{{Fence: 7, Writes: []*graft.Write{write("a", "x", 3)}}, {Fence: 9, Writes: []*graft.Write{write("a", "x", 4), write("b", "z", 4)}},
			{Writes: []*graft.Write{write("a", "w", 5)}}} {
			if err := tg.Sink.Apply(ctx, b); err != nil {
				t.Fatalf("token %d: %v", b.Fence, err)
			}
		}
		if err := tg.Sink.Apply(ctx, &graft.Batch{Fence: 8, Writes: []*graft.Write{write("b", "z", 6)}}); !errors.Is(err, graft.ErrFenced) {
			t.Fatalf("token 8 on b after 9: got %v", err)
		}
		CheckExport(t, tg.Reader, `{"type":"vertex","id":"w","label":"v","props":{"n":5}}
{"type":"vertex","id":"x","label":"v","props":{"n":4}}
{"type":"vertex","id":"y","label":"v","props":{"n":1}}
{"type":"vertex","id":"z","label":"v","props":{"n":4}}`)
	})
	t.Run("reader: vertex, edges by direction and label", func(t *testing.T) {
		t.Parallel()
		tg := open(t)
		mustApply(t, tg.Sink, `{"ops":[{"op":"upsertVertex","id":"a","label":"v","props":{"k":"x"}},{"op":"upsertVertex","id":"b","label":"v"},
			{"op":"upsertVertex","id":"c","label":"v"},{"op":"upsertEdge","label":"e","from":"a","to":"b"},
			{"op":"upsertEdge","label":"f","from":"c","to":"a"},{"op":"upsertEdge","label":"e","from":"a","to":"a"}]}`)
		ctx := context.Background()
		if _, err := tg.Reader.Vertex(ctx, "zz"); !errors.Is(err, graft.ErrNotFound) {
			t.Fatalf("Vertex(unknown): got %v, want ErrNotFound", err)
		}
		v, err := tg.Reader.Vertex(ctx, "a")
		if err != nil || v.Label != "v" || v.Props["k"] != graft.String("x") {
			t.Fatalf("Vertex(a) = %+v, %v", v, err)
		}
		for _, tc := range []struct {
			dir   graft.Direction
			label string
			want  string
		}{
			{graft.Out, "", "a-e->a a-e->b"},
			{graft.In, "", "a-e->a c-f->a"},
			{graft.Both, "", "a-e->a a-e->b c-f->a"},
			{graft.Both, "f", "c-f->a"},
			{graft.Out, "f", ""},
		} {
			es, err := tg.Reader.Edges(ctx, "a", tc.dir, tc.label)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.From+"-"+e.Label+"->"+e.To)
			}
			sort.Strings(got)
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("Edges(a, %d, %q) = %q, want %q", tc.dir, tc.label, g, tc.want)
			}
		}
	})
}

func applyStep(t *testing.T, s graft.Sink, lines []string) error {
	t.Helper()
	b := &graft.Batch{}
	for _, l := range lines {
		w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
		if err != nil {
			t.Fatalf("bad test write %s: %v", l, err)
		}
		b.Writes = append(b.Writes, w)
	}
	// A store shared by the cases running in parallel may refuse a
	// transaction it deadlocked (Virtuoso's 40001): the engine retries
	// those, and so does the suite, a few times.
	for attempt := 1; ; attempt++ {
		err := s.Apply(context.Background(), b)
		if c := graft.ClassOf(err); err == nil || attempt == 5 || (c != graft.Conflict && c != graft.Transient) {
			return err
		}
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
}

func mustApply(t *testing.T, s graft.Sink, lines ...string) {
	t.Helper()
	if err := applyStep(t, s, lines); err != nil {
		t.Fatal(err)
	}
}

func checkStep(t *testing.T, i int, s step, err error) {
	t.Helper()
	switch {
	case s.class == 0 && err != nil:
		t.Fatalf("step %d: unexpected error: %v", i, err)
	case s.class != 0 && err == nil:
		t.Fatalf("step %d: succeeded, want a %s error", i, s.class)
	case s.class != 0:
		if c := graft.ClassOf(err); c != s.class {
			t.Fatalf("step %d: error class %s, want %s (%v)", i, c, s.class, err)
		}
		if ix := graft.IndexOf(err); ix != s.index {
			t.Fatalf("step %d: error attributed to write %d, want %d (%v)", i, ix, s.index, err)
		}
	}
}

// ExportLines returns the graph's export, one line per element, sorted.
func ExportLines(t testing.TB, r graft.Reader) []string {
	t.Helper()
	var lines []string
	err := r.Export(context.Background(),
		func(v *graft.Vertex) error {
			lines = append(lines, strings.TrimSuffix(string(graft.AppendVertexLine(nil, v)), "\n"))
			return nil
		},
		func(e *graft.Edge) error {
			lines = append(lines, strings.TrimSuffix(string(graft.AppendEdgeLine(nil, e)), "\n"))
			return nil
		})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	sort.Strings(lines)
	return lines
}

// CheckExport compares the graph's export with want (lines in any order).
func CheckExport(t testing.TB, r graft.Reader, want string) {
	t.Helper()
	var wl []string
	sc := bufio.NewScanner(strings.NewReader(want))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			wl = append(wl, l)
		}
	}
	sort.Strings(wl)
	got := ExportLines(t, r)
	if strings.Join(got, "\n") != strings.Join(wl, "\n") {
		t.Fatalf("graph differs:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wl, "\n"))
	}
}

// CheckModel compares the graph a reader exports with a model graph.
func CheckModel(t testing.TB, r graft.Reader, want *model.Graph) {
	t.Helper()
	var gv []graft.Vertex
	var ge []graft.Edge
	err := r.Export(context.Background(),
		func(v *graft.Vertex) error { gv = append(gv, *v); return nil },
		func(e *graft.Edge) error { ge = append(ge, *e); return nil })
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	wv, we := want.Snapshot()
	if d := model.Diff(wv, we, gv, ge); d != "" {
		t.Fatalf("graph differs from the model (%d vertices, %d edges expected):\n%s", len(wv), len(we), d)
	}
}
