package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/graftdb/graft/internal/awstest"
)

// Issue 28 as an operator saw it: two graft run processes share a 4-shard
// stream; both catch up; one is killed with SIGKILL and records keep coming.
// Until every record is in the graph, no instance may answer /v1/status
// with pending 0 (before, the survivor trusted the dead one's last "caught
// up" for two thirds of the lease TTL). The killed one, restarted on its
// data dir, takes its own leases back at once, by its identity: b, which
// would take them once they expire (30 s after a's last renewal), never
// does (its taken_expired stays 0).
func TestKinesisStatusAfterAKill(t *testing.T) {
	bin := buildGraft(t)
	const stream = "status"
	k := startKinesis(t, stream, 4)
	ctx, kc, graph := context.Background(), k.kc, k.graph

	// 32 keys, each a counter vertex whose seq is the record's number in
	// its key: the graph holds every record once each key is at the last.
	const keys = 32
	put := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			var entries []types.PutRecordsRequestEntry
			for k := range keys {
				line := fmt.Sprintf(`{"key":"k%d","ops":[{"op":"upsertVertex","id":"c:%d","label":"counter","props":{"seq":%d}}]}`, k, k, i)
				entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(line), PartitionKey: aws.String(fmt.Sprintf("k%d", k))})
			}
			out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
			if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				t.Fatalf("put records: %v", err)
			}
		}
	}
	complete := func(last int) bool {
		t.Helper()
		var n int
		if err := graph.QueryRow(`SELECT count(*) FROM vertices WHERE label = 'counter' AND json_extract(props, '$.seq') = ?`, last).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == keys
	}
	client := &http.Client{Timeout: 5 * time.Second}
	pending := func(p *proc) int64 {
		t.Helper()
		resp, err := client.Get("http://" + p.addr + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct {
			Pending   int64 `json:"pending"`
			SourceLag int64 `json:"source_lag"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st.Pending
	}
	owners := func() map[string]int {
		m := k.owners()
		delete(m, "")
		return m
	}
	// watch polls until every record up to round last is in the graph and
	// every instance says pending 0, failing if one says 0 before that.
	watch := func(what string, last int, ps ...*proc) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			done := 0
			for _, p := range ps {
				if pending(p) == 0 {
					if !complete(last) {
						t.Fatalf("%s: an instance says pending 0 while records are not in the graph", what)
					}
					done++
				}
			}
			if done == len(ps) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not caught up after 90 s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	source := "kinesis://" + stream + "?region=" + awstest.Region + "&endpoint=" + k.kEndpoint + "&dynamodb_endpoint=" + k.dEndpoint + "&lease_ttl=30s&checkpoint_interval=200ms"
	dirA := t.TempDir()
	start := func(dir string) *proc {
		return startRun(t, bin, dir, "--source", source, "--sink", "sqlite:"+k.store, "--cache", "off")
	}
	put(0, 20)
	a := start(dirA)
	defer func() { a.cmd.Process.Kill(); a.cmd.Wait() }()
	b := start(t.TempDir())
	defer func() { b.cmd.Process.Kill(); b.cmd.Wait() }()
	// Balanced 2/2 (b asks a for its share), then both caught up.
	deadline := time.Now().Add(60 * time.Second)
	for m := owners(); len(m) != 2 || m[firstOwner(m)] != 2; m = owners() {
		if time.Now().After(deadline) {
			t.Fatalf("leases %v: want 2 each", m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	watch("before the kill", 19, a, b)
	before := owners()

	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	put(20, 40)
	// a's two shards now hold records nobody reads until a is back: b must
	// say so for as long as that lasts, here 3 s.
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(100 * time.Millisecond) {
		if pending(b) == 0 && !complete(39) {
			t.Fatal("after the kill, b says pending 0 while a's shards hold records nobody read")
		}
	}
	if complete(39) {
		t.Fatal("the graph is complete although a's shards had no reader: the test proves nothing")
	}

	restarted := time.Now()
	a = start(dirA)
	for deadline := time.Now().Add(60 * time.Second); metricOf(t, a, "graft_kinesis_leases_held") != 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted a does not hold its 2 leases")
		}
	}
	t.Logf("the restarted a held its 2 leases %v after it started", time.Since(restarted).Round(10*time.Millisecond))
	watch("after the restart", 39, a, b)
	t.Logf("caught up %v after the restart on the same data dir (lease TTL 30s)", time.Since(restarted).Round(100*time.Millisecond))
	if n := metricOf(t, b, `graft_kinesis_lease_events_total{event="taken_expired"}`); n != 0 {
		t.Fatalf("b took %v expired leases: the restarted a did not take its own back at once", n)
	}
	if after := owners(); len(after) != 2 || after[firstOwner(after)] != 2 {
		t.Fatalf("leases %v after the restart, %v before: want the same two workers, 2 each", after, before)
	} else {
		for w := range before {
			if after[w] != 2 {
				t.Fatalf("leases %v after the restart, %v before: the restarted instance is not the same worker", after, before)
			}
		}
	}
	for _, p := range []*proc{a, b} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, p.errs)
		}
	}
}

// metricOf reads one sample of p's /metrics.
func metricOf(t *testing.T, p *proc, sample string) float64 {
	t.Helper()
	r, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the metrics of %s", sample, p.addr)
	return 0
}

// firstOwner returns one of the workers in m.
func firstOwner(m map[string]int) string {
	for w := range m {
		return w
	}
	return ""
}
