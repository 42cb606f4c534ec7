package engine

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// Every field of Stats and of Snapshot has exactly one row in Counters, and
// every metric is documented: a counter added by hand to one of them and
// not the others fails here.
func TestCountersCoverStats(t *testing.T) {
	var st Stats
	var sn Snapshot
	stats, snaps := map[uintptr]int{}, map[uintptr]int{}
	metrics := map[string]bool{}
	for _, c := range Counters {
		stats[uintptr(unsafe.Pointer(c.stat(&st)))]++
		snaps[uintptr(unsafe.Pointer(c.snap(&sn)))]++
		if metrics[c.Metric] {
			t.Errorf("metric %s twice", c.Metric)
		}
		metrics[c.Metric] = true
	}
	check := func(v reflect.Value, seen map[uintptr]int) {
		for i := range v.NumField() {
			if n := seen[v.Field(i).Addr().Pointer()]; n != 1 {
				t.Errorf("%s.%s: %d rows in Counters, want 1", v.Type().Name(), v.Type().Field(i).Name, n)
			}
		}
	}
	check(reflect.ValueOf(&st).Elem(), stats)
	check(reflect.ValueOf(&sn).Elem(), snaps)
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for m := range metrics {
		if !strings.Contains(string(doc), "`graft_"+m+"`") {
			t.Errorf("metric graft_%s is not in docs/operations.md", m)
		}
	}
	// A snapshot copies each counter into its own field.
	for i, c := range Counters {
		c.stat(&st).Store(int64(i + 1))
	}
	s := st.Snapshot()
	for i, c := range Counters {
		if c.Value(&s) != int64(i+1) {
			t.Errorf("%s: snapshot %d, want %d", c.Metric, c.Value(&s), i+1)
		}
	}
}

// In flight is what the engine holds: every record read and not yet
// committed, dead-lettered, skipped by the decoder or dropped with its
// lost partition. Skipped and abandoned records were left out, so
// /v1/status never said pending 0 again after the first of them.
func TestInFlightCountsEveryWayOut(t *testing.T) {
	sn := Snapshot{Records: 10, Committed: 4, DeadLetters: 2, Skipped: 3, Abandoned: 1}
	if got := sn.InFlight(); got != 0 {
		t.Fatalf("InFlight %d of %+v, want 0", got, sn)
	}
	sn.Records++
	if got := sn.InFlight(); got != 1 {
		t.Fatalf("InFlight %d of %+v, want 1", got, sn)
	}
}
