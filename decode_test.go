package graft_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/graftdb/graft"
)

func TestDecodeKeys(t *testing.T) {
	for _, tc := range []struct{ raw, recordKey, want string }{
		{`{"key":"k","ops":[{"op":"deleteVertex","id":"v"}]}`, "rk", "k"},
		{`{"ops":[{"op":"deleteVertex","id":"v"}]}`, "rk", "rk"},
		{`{"ops":[{"op":"deleteVertex","id":"v"}]}`, "", "v"},
		{`{"ops":[{"op":"upsertEdge","label":"l","from":"a","to":"b"}]}`, "", "a"},
		{`{"ops":[{"op":"upsertEdge","id":"e","label":"l","from":"a","to":"b"}]}`, "", "e"},
	} {
		w, err := graft.Decode([]byte(tc.raw), tc.recordKey, graft.DefaultLimits)
		if err != nil || w.Key != tc.want {
			t.Errorf("Decode(%s, %q): key %q, %v; want %q", tc.raw, tc.recordKey, w.Key, err, tc.want)
		}
	}
}

func TestDecodeValues(t *testing.T) {
	w, err := graft.Decode([]byte(`{"version":17,"ops":[{"op":"upsertVertex","id":"v","label":"l","props":{
		"i":-9223372036854775808,"f":1.0,"e":1e3,"s":"a\"\n\u00e9","b":false,"z":0}}]}`), "", graft.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := graft.Props{"i": graft.Int(math.MinInt64), "f": graft.Float(1), "e": graft.Float(1000),
		"s": graft.String("a\"\né"), "b": graft.Bool(false), "z": graft.Int(0)}
	if !w.Ops[0].Props.Equal(want) || w.Version != 17 {
		t.Fatalf("got %#v version %d", w.Ops[0].Props, w.Version)
	}
}

func TestDecodeRejects(t *testing.T) {
	for raw, want := range map[string]string{
		"{\"ops\":[{\"op\":\"deleteVertex\",\"id\":\"a\nb\"}]}":                   "malformed JSON",
		`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"n":NaN}}]}`:  "ops[0].props.n: invalid",
		`{"ops":[{"op":"upsertVertex","id":"a","label":"x"}]} trailing`:           "malformed JSON",
		`{"ops":[{"op":"upsertVertex","id":"","label":"x"}]}`:                     "ops[0].id: must not be empty",
		`{"ops":[{"op":"deleteVertex","id":"a","element":"vertex"}]}`:             "ops[0].element: not allowed",
		`{"ops":[{"op":"upsertEdge","label":"l","from":"a","to":["b"]}]}`:         "ops[0].to: must be a string",
		`{"ops":[{"op":"deleteVertex","id":"a","props":{}}]}`:                     "ops[0].props: not allowed in deleteVertex",
		`{"ops":[{"op":"dropProps","element":"node","id":"a","keys":[]}]}`:        `ops[0].element: must be "vertex" or "edge"`,
		`{"ops":[{"op":"upsertVertex","id":"a","label":"x","props":{"a.b":{}}}]}`: `ops[0].props."a.b": an object`,
		`{"ops":{"op":"deleteVertex"}}`:                                           "ops: must be an array of ops, not an object",
		`{"ops":[7]}`:                                                             "ops[0]: an op must be a JSON object, not a number",
	} {
		_, err := graft.Decode([]byte(raw), "", graft.DefaultLimits)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want an error containing %q", raw, err, want)
		}
		if graft.ClassOf(err) != graft.Permanent {
			t.Errorf("Decode(%q): class %s, want permanent", raw, graft.ClassOf(err))
		}
	}
}

// The wire encoder and the decoder agree, for every op.
func FuzzDecodeRoundTrip(f *testing.F) {
	f.Add(`{"key":"k","id":"w","version":3,"ops":[{"op":"upsertVertex","id":"v","label":"l","props":{"a":1,"b":1.5,"c":"x","d":true}}]}`)
	f.Add(`{"ops":[{"op":"replaceEdges","from":"a","label":"l","to":["b","c","b"]},{"op":"dropProps","element":"edge","id":"e","label":"l","from":"a","to":"b","keys":["x"]}]}`)
	f.Add(`{"ops":[{"op":"deleteEdge","label":"l","from":"a","to":"b"},{"op":"dropProps","element":"vertex","id":"a","keys":[]},{"op":"deleteVertex","id":"\u0000"}]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		w, err := graft.Decode([]byte(raw), "rk", graft.DefaultLimits)
		if err != nil {
			if graft.ClassOf(err) != graft.Permanent {
				t.Fatalf("decode error of class %s", graft.ClassOf(err))
			}
			return
		}
		again, err := graft.Decode(w.AppendJSON(nil), "rk", graft.DefaultLimits)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", w.AppendJSON(nil), err)
		}
		if !reflect.DeepEqual(normalize(w), normalize(again)) {
			t.Fatalf("round trip changed the write:\n%#v\n%#v", w, again)
		}
	})
}

func normalize(w *graft.Write) *graft.Write {
	for i := range w.Ops {
		if len(w.Ops[i].Props) == 0 {
			w.Ops[i].Props = nil
		}
		if w.Ops[i].Keys == nil && (w.Ops[i].Kind == graft.DropVertexProps || w.Ops[i].Kind == graft.DropEdgeProps) {
			w.Ops[i].Keys = []string{}
		}
		for k, v := range w.Ops[i].Props {
			if v.Kind() == graft.KindFloat && math.IsNaN(v.Float()) {
				delete(w.Ops[i].Props, k)
			}
		}
	}
	return w
}

// A field given twice and a lone surrogate escape are refused with a clear
// error; paired surrogates and escaped backslashes before a 'u' are fine.
func TestDecodeDuplicatesAndSurrogates(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{"ops":[{"op":"deleteVertex","op":"upsertVertex","id":"v","label":"l"}]}`, `ops[0].op: given twice`},
		{`{"ops":[{"op":"upsertVertex","id":"a","id":"b","label":"l"}]}`, `ops[0].id: given twice`},
		{`{"key":"a","key":"b","ops":[{"op":"deleteVertex","id":"v"}]}`, `key: given twice`},
		{`{"ops":[],"ops":[{"op":"deleteVertex","id":"v"}]}`, `ops: given twice`},
		{`{"ops":[{"op":"upsertVertex","id":"v","label":"l","props":{"n":1,"n":2}}]}`, `ops[0].props.n: given twice`},
		{`{"ops":[{"op":"deleteVertex","id":"x\ud800y"}]}`, `lone UTF-16 surrogate escape (\ud800) at byte 36`},
		{`{"ops":[{"op":"deleteVertex","id":"\udc00"}]}`, `lone UTF-16 surrogate`},
		{`{"ops":[{"op":"deleteVertex","id":"\ud83d\u0041"}]}`, `lone UTF-16 surrogate`},
	} {
		_, err := graft.Decode([]byte(tc.raw), "", graft.DefaultLimits)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s): %v, want %q", tc.raw, err, tc.want)
		}
	}
	for raw, id := range map[string]string{
		`{"ops":[{"op":"deleteVertex","id":"\ud83d\ude00"}]}`:        "😀",
		`{"ops":[{"op":"deleteVertex","id":"\\ud800"}]}`:             `\ud800`,
		`{"meta":1,"meta":2,"ops":[{"op":"deleteVertex","id":"v"}]}`: "v",
	} {
		w, err := graft.Decode([]byte(raw), "", graft.DefaultLimits)
		if err != nil || w.Ops[0].ID != id {
			t.Errorf("Decode(%s): %+v %v, want id %q", raw, w, err, id)
		}
	}
}

// An integer outside int64 is an error naming the property, never a float:
// a float would change the value silently (2^63 is not 2^63 - 1 + 1).
func TestDecodeIntegerOverflow(t *testing.T) {
	for _, n := range []string{"9223372036854775808", "-9223372036854775809", "123456789012345678901234567890"} {
		_, err := graft.Decode([]byte(`{"ops":[{"op":"upsertVertex","id":"v","label":"l","props":{"n":`+n+`}}]}`), "", graft.DefaultLimits)
		if err == nil || !strings.Contains(err.Error(), "ops[0].props.n") {
			t.Errorf("%s: %v, want an error naming ops[0].props.n", n, err)
		}
	}
	w, err := graft.Decode([]byte(`{"ops":[{"op":"upsertVertex","id":"v","label":"l","props":{"n":9223372036854775807,"f":9223372036854775808.0}}]}`), "", graft.DefaultLimits)
	if err != nil || w.Ops[0].Props["n"] != graft.Int(math.MaxInt64) || w.Ops[0].Props["f"].Kind() != graft.Float(0).Kind() {
		t.Fatalf("%+v %v", w, err)
	}
}
