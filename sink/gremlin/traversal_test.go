package gremlin

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gremlingo "github.com/apache/tinkerpop/gremlin-go/v3/driver"

	"github.com/graftdb/graft"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// cases are single ops and mixed batches, in the wire format.
var cases = []struct {
	name   string
	writes []string
}{
	{"upsertVertex", []string{`{"ops":[{"op":"upsertVertex","id":"dev:1","label":"device","props":{"serial":"SN1","n":7,"f":1.5,"ok":true}}]}`}},
	{"deleteVertex", []string{`{"ops":[{"op":"deleteVertex","id":"dev:1"}]}`}},
	{"dropVertexProps", []string{`{"ops":[{"op":"dropProps","element":"vertex","id":"dev:1","keys":["a","b"]}]}`}},
	{"upsertEdge", []string{`{"ops":[{"op":"upsertEdge","label":"owns","from":"org:1","to":"dev:1","props":{"since":2024}}]}`}},
	{"upsertEdgeWithID", []string{`{"ops":[{"op":"upsertEdge","id":"e1","label":"owns","from":"org:1","to":"dev:1"}]}`}},
	{"deleteEdge", []string{`{"ops":[{"op":"deleteEdge","label":"owns","from":"org:1","to":"dev:1"}]}`}},
	{"deleteEdgeWithID", []string{`{"ops":[{"op":"deleteEdge","id":"e1","label":"owns","from":"org:1","to":"dev:1"}]}`}},
	{"dropEdgeProps", []string{`{"ops":[{"op":"dropProps","element":"edge","label":"owns","from":"org:1","to":"dev:1","keys":["since"]}]}`}},
	{"replaceEdges", []string{`{"ops":[{"op":"replaceEdges","from":"dev:1","label":"installed","to":["sw:2","sw:1","sw:2"]}]}`}},
	{"mixedBatch", []string{
		`{"key":"org:1","ops":[{"op":"upsertVertex","id":"org:1","label":"organization","props":{"name":"Acme"}},{"op":"upsertVertex","id":"dev:1","label":"device"},{"op":"upsertEdge","label":"owns","from":"org:1","to":"dev:1"}]}`,
		`{"key":"org:1","ops":[{"op":"upsertVertex","id":"sw:1","label":"software","props":{"version":"1.0"}},{"op":"replaceEdges","from":"dev:1","label":"installed","to":["sw:1"]},{"op":"dropProps","element":"vertex","id":"org:1","keys":["old"]}]}`,
		`{"key":"org:2","ops":[{"op":"deleteVertex","id":"dev:9"}]}`,
	}},
	{"hostileValues", []string{`{"ops":[{"op":"upsertVertex","id":"x').drop();g.V('","label":"l\"abel","props":{"q":"'); g.V().drop(); //","k\ney":"\u0000"}}]}`}},
}

// The bytecode of each op and of mixed batches, per dialect, rendered as
// Gremlin text by the driver's translator and compared with golden files
// (go test ./sink/gremlin -run Golden -update rewrites them). The text is
// for reading: what is sent is the bytecode, values as arguments.
func TestGolden(t *testing.T) {
	for _, d := range []Dialect{Neptune, JanusGraph} {
		var out strings.Builder
		for _, c := range cases {
			var ws []*graft.Write
			for _, l := range c.writes {
				w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				ws = append(ws, w)
			}
			b := &builder{dialect: d, idProp: DefaultIDProperty}
			tr := b.batch(ws)
			// The driver's translator must accept the bytecode (it walks
			// every argument as the serializer does).
			if _, err := gremlingo.NewTranslator("g").Translate(tr.bytecode()); err != nil {
				t.Fatalf("%s: translate: %v", c.name, err)
			}
			fmt.Fprintf(&out, "## %s (%d steps)\ng.%s\n\n", c.name, tr.steps(), tr)
		}
		path := filepath.Join("testdata", string(d)+".golden")
		if *update {
			if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got := out.String(); got != string(want) {
			t.Errorf("%s: bytecode differs from %s:\n%s", d, path, lineDiff(string(want), got))
		}
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 10; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, w, g)
			shown++
		}
	}
	return b.String()
}
