package mapping_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/mapping"
)

func mustParse(t *testing.T, doc string) *mapping.Mapper {
	t.Helper()
	m, err := mapping.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mapOne(t *testing.T, m *mapping.Mapper, topic, event string) (*graft.Write, string, error) {
	t.Helper()
	rec := graft.Record{Value: []byte(event), Pos: graft.Position{Partition: topic, Offset: 1}}
	return m.MapRecord(rec, graft.DefaultLimits)
}

// Compile errors name the line, the rule and the field.
func TestCompileErrors(t *testing.T) {
	for doc, want := range map[string]string{
		"rules: []": "rules: no rule",
		"rules:\n  - name: A\n    ops:\n      - deleteVertex: {id: x}\n":                                                                     "line 2: rule A: key: required",
		"rules:\n  - name: A\n    key: k +\n    ops:\n      - deleteVertex: {id: x}\n":                                                       "line 2: rule A: key: unexpected token EOF",
		"rules:\n  - name: A\n    key: k\n    ops:\n      - teleport: {id: x}\n":                                                             `line 5: ops[0]: unknown op "teleport"`,
		"rules:\n  - name: A\n    key: k\n    ops:\n      - upsertVertex: {id: x, lable: y}\n":                                               `ops[0].upsertVertex: unknown field "lable"`,
		"rules:\n  - name: A\n    key: k\n    ops:\n      - upsertVertex: {id: x}\n":                                                         "ops[0].upsertVertex.label: required",
		"rules:\n  - name: A\n    key: k\n    ops:\n      - dropProps: {element: vertex, keys: ks}\n":                                        "ops[0].dropProps: element vertex needs id",
		"rules:\n  - name: A\n    key: k\n    ops:\n      - dropProps: {element: node, id: x, keys: ks}\n":                                   `ops[0].dropProps.element: "node": vertex or edge`,
		"rules:\n  - name: A\n    key: k\n    ops:\n      - for: xs\n":                                                                       "ops[0].for: needs ops",
		"rules:\n  - name: A\n    key: k\n    ops:\n      - for: xs\n        ops:\n          - upsertVertex: {id: '\"a\" +', label: l}\n":    "ops[0].for.ops[0].upsertVertex.id",
		"rules:\n  - name: A\n    topic: 'event\\.('\n    key: k\n    ops:\n      - deleteVertex: {id: x}\n":                                 "rule A: topic: error parsing regexp",
		"rules:\n  - name: A\n    key: k\n    ops: [{deleteVertex: {id: x}}]\n  - name: A\n    key: k\n    ops: [{deleteVertex: {id: x}}]\n": "rule A: the name is used twice",
		"rules:\n  - name: 'a b'\n    key: k\n    ops: [{deleteVertex: {id: x}}]\n":                                                          `rules[0].name: "a b"`,
		"unmapped: drop\nrules:\n  - name: A\n    key: k\n    ops: [{deleteVertex: {id: x}}]\n":                                              `unmapped: "drop" is not dead-letter or skip`,
		"rules:\n  - name: A\n    kee: k\n":                                                                                                  `line 3: rules[0]: unknown field "kee"`,
	} {
		_, err := mapping.Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got  %v\n want %q", doc, err, want)
		}
	}
}

const rules = `
unmapped: dead-letter
rules:
  - name: ByTopic
    topic: 'billing\..*'
    key: '"billing"'
    ops:
      - upsertVertex: {id: '"invoice:" + id', label: '"invoice"', props: {amount: amount}}
  - name: Org
    when: event.type == "Org"
    key: org
    ops:
      - upsertVertex:
          id: '"org:" + org'
          label: '"organization"'
          props: {n: n, f: f, ok: ok, name: name, missing: nothere}
      - upsertVertex: {id: '"flag:" + org', label: '"flag"', if: 'ok == true'}
      - for: tags
        as: t
        if: t != "skip"
        ops:
          - upsertEdge: {label: '"tagged"', from: '"org:" + org', to: '"tag:" + t'}
      - replaceEdges: {from: '"org:" + org', label: '"member"', to: 'map(members, "user:" + #)'}
      - dropProps: {element: vertex, id: '"org:" + org', keys: '["old", "older"]'}
  - name: Bad
    when: event.type == "Bad"
    key: org
    ops:
      - upsertVertex: {id: num, label: '"x"'}
  - name: Empty
    when: event.type == "Empty"
    key: '"k"'
    ops:
      - upsertVertex: {id: v, label: '"x"'}
  - name: BadProp
    when: event.type == "BadProp"
    key: org
    ops:
      - upsertVertex: {id: '"x"', label: '"x"', props: {p: obj}}
`

// Every expression feature of the example: topic selection, when, string
// concatenation, props (absent ones omitted), if on an op, for with a
// filter, map() into replaceEdges, a list literal; int64 exact, floats,
// booleans, hostile strings verbatim.
func TestMapping(t *testing.T) {
	m := mustParse(t, rules)
	hostile := `'); DROP TABLE v; -- \"quoted\" \n 日本`
	w, rule, err := mapOne(t, m, "events", `{"type":"Org","org":"`+hostile+`","n":9223372036854775807,"f":1.5,"ok":true,"name":"x","tags":["a","skip","b"],"members":["u1","u2"]}`)
	if err != nil || rule != "Org" {
		t.Fatalf("%s: %v", rule, err)
	}
	got := string(w.AppendJSON(nil))
	org := `'); DROP TABLE v; -- \"quoted\" \n 日本`
	want := `{"key":"` + org + `","ops":[{"op":"upsertVertex","id":"org:` + org + `","label":"organization","props":{"f":1.5,"n":9223372036854775807,"name":"x","ok":true}},` +
		`{"op":"upsertVertex","id":"flag:` + org + `","label":"flag"},` +
		`{"op":"upsertEdge","label":"tagged","from":"org:` + org + `","to":"tag:a"},{"op":"upsertEdge","label":"tagged","from":"org:` + org + `","to":"tag:b"},` +
		`{"op":"replaceEdges","label":"member","from":"org:` + org + `","to":["user:u1","user:u2"]},` +
		`{"op":"dropProps","element":"vertex","id":"org:` + org + `","keys":["old","older"]}]}`
	if got != want {
		t.Fatalf("write:\n got  %s\n want %s", got, want)
	}
	if w.Key != "'); DROP TABLE v; -- \"quoted\" \n 日本" {
		t.Fatalf("key not verbatim: %q", w.Key)
	}
	// ok false: the conditional op is not emitted; no tags: no edges.
	w, _, err = mapOne(t, m, "events", `{"type":"Org","org":"o","ok":false,"members":[]}`)
	if err != nil || len(w.Ops) != 3 {
		t.Fatalf("ok=false: %v %s", err, w.AppendJSON(nil))
	}
	// Topic selection comes first.
	w, rule, err = mapOne(t, m, "billing.invoices/3", `{"type":"Org","id":"i1","amount":12.5}`)
	if err != nil || rule != "ByTopic" || w.Ops[0].ID != "invoice:i1" || w.Ops[0].Props["amount"] != graft.Float(12.5) {
		t.Fatalf("by topic: %s %v %+v", rule, err, w)
	}
}

// Runtime failures name the rule and the field; unmapped events are
// ErrUnmapped, or skipped when configured.
func TestMappingFailures(t *testing.T) {
	m := mustParse(t, rules)
	for event, want := range map[string]string{
		`{"type":"Bad","org":"o","num":7}`:                        "rule Bad: ops[0].upsertVertex.id: want a string, got int64 7",
		`{"type":"BadProp","org":"o","obj":{"a":1}}`:              "rule BadProp: ops[0].upsertVertex.props.p: want a string, number or boolean, got an object",
		`{"type":"Org","org":"o","members":"u1"}`:                 "rule Org: ops[3].replaceEdges.to",
		`{"type":"Empty","v":""}`:                                 "rule Empty: the write it produced: ops[0].id: missing",
		`{"type":"Org","org":"o","tags":"notalist","members":[]}`: "rule Org: ops[2].for: want an array, got the string",
		`{"type":"Org"`: "event: malformed JSON",
		`[1,2]`:         "event: not a JSON object",
	} {
		_, _, err := mapOne(t, m, "events", event)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got  %v\n want %q", event, err, want)
		}
	}
	_, _, err := mapOne(t, m, "events", `{"type":"Nothing"}`)
	if !errors.Is(err, graft.ErrUnmapped) {
		t.Fatalf("unmatched event: %v, want ErrUnmapped", err)
	}
	skip := mustParse(t, "unmapped: skip\n"+rules[strings.Index(rules, "rules:"):])
	if w, _, err := mapOne(t, skip, "events", `{"type":"Nothing"}`); w != nil || err != nil {
		t.Fatalf("skip: %v %v", w, err)
	}
}

// One event cannot make its mapping run away: nested for: blocks over a
// large array stop at StepsPerOp × max_ops items visited, and a rule that
// emits too many ops stops at max_ops, each with an error naming the block
// (before, {"a":[0…99999]} in two nested loops grew to 23.8 GB and ignored
// SIGTERM). Both are errors of the event (dead-lettered), fast.
func TestMappingBounded(t *testing.T) {
	m := mustParse(t, `
rules:
  - name: Nested
    when: event.type == "N"
    key: '"k"'
    ops:
      - for: a
        as: x
        ops:
          - for: a
            as: y
            if: x == -1
            ops:
              - upsertVertex: {id: '"v"', label: '"l"'}
  - name: Many
    when: event.type == "M"
    key: '"k"'
    ops:
      - for: a
        as: x
        ops:
          - upsertVertex: {id: '"v" + string(x)', label: '"l"'}
`)
	var b strings.Builder
	b.WriteString(`{"type":"N","a":[`)
	for i := range 100000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, i)
	}
	b.WriteString(`]}`)
	nested := b.String()
	lim := graft.Limits{MaxRecordBytes: 4 << 20, MaxOps: 1000}
	_, _, err := m.MapRecord(graft.Record{Value: []byte(nested)}, lim)
	if err == nil || !strings.Contains(err.Error(), "more than 10000 loop items") {
		t.Fatalf("nested loops: %v", err)
	}
	many := strings.Replace(nested, `"type":"N"`, `"type":"M"`, 1)
	_, _, err = m.MapRecord(graft.Record{Value: []byte(many)}, lim)
	if err == nil || !strings.Contains(err.Error(), "more than 1000 ops") {
		t.Fatalf("many ops: %v", err)
	}
}

// Numbers are exact wherever they are in the event: inside arrays and
// nested objects too, an integer is an int64, never a float that rounds it.
func TestEventNumbersExact(t *testing.T) {
	ev, err := mapping.DecodeEvent([]byte(`{"n":9007199254740993,"a":[9007199254740993,{"b":[-9223372036854775808]}],"f":[1.5]}`))
	if err != nil {
		t.Fatal(err)
	}
	a := ev["a"].([]any)
	if ev["n"] != int64(9007199254740993) || a[0] != int64(9007199254740993) || a[1].(map[string]any)["b"].([]any)[0] != int64(math.MinInt64) || ev["f"].([]any)[0] != 1.5 {
		t.Fatalf("%#v", ev)
	}
}
