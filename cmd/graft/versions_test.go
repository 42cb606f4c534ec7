package main

import (
	"strings"
	"testing"
)

// --versions derive gives a write without a version its line number: a
// write that carries version 100 is newer than line 3's, whose value does
// not win; with the default (producer), line 3 is unversioned and applies
// unguarded. A bad value names the setting.
func TestVersionsFlag(t *testing.T) {
	in := writeFile(t,
		`{"key":"a","version":100,"ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"q":1}}]}`,
		`{"key":"b","ops":[{"op":"upsertVertex","id":"w","label":"x"}]}`,
		`{"key":"b","ops":[{"op":"upsertVertex","id":"v","label":"x","props":{"q":3}}]}`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--versions", "derive"}, `"props":{"q":1}`},
		{nil, `"props":{"q":3}`},
	} {
		dir := t.TempDir()
		if r := graftCmd(t, nil, append([]string{"ingest", in, "--data-dir", dir}, c.args...)...); r.code != 0 {
			t.Fatalf("ingest %v: exit %d\n%s", c.args, r.code, r.stderr)
		}
		exp := graftCmd(t, nil, "export", "--data-dir", dir)
		if !strings.Contains(exp.stdout, `"id":"v","label":"x",`+c.want) {
			t.Errorf("ingest %v: export\n%s\nwant v with %s", c.args, exp.stdout, c.want)
		}
	}
	r := graftCmd(t, nil, "ingest", in, "--data-dir", t.TempDir(), "--versions", "newest")
	if r.code != 2 || !strings.Contains(r.stderr, `versions: "newest"`) {
		t.Fatalf("--versions newest: exit %d\n%s", r.code, r.stderr)
	}
}
