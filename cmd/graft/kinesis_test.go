package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/internal/awstest"
	"github.com/graftdb/graft/internal/model"
)

// graft produce --to kinesis:// then graft run --source kinesis://: the
// graph equals the model (order per key kept through PutRecords).
func TestProduceAndRunWithKinesis(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	awstest.UseEnv(t)
	ctx := context.Background()
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "writes", 3)
	wl, lines := fleetWorkload(t, 8, 3, 10, 4)
	lines = append(lines, `{"ops":[{"op":"nope"}]}`)
	to := "kinesis://writes?region=" + awstest.Region + "&endpoint=" + kEndpoint
	r := graftCmd(t, nil, "produce", "--to", to, "--json", writeFile(t, lines...))
	if r.code != 1 || !strings.Contains(r.stdout, `"produced":`+strconv.Itoa(len(wl.Writes))) || !strings.Contains(r.stderr, `unknown op "nope"`) {
		t.Fatalf("produce: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	dir, addr := t.TempDir(), freeAddr(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() {
		done <- graftCtx(rctx, t, nil, "run", "--data-dir", dir, "--listen", addr, "--source", to+"&dynamodb_endpoint="+dEndpoint)
	}()
	n := int64(len(wl.Writes))
	waitStatus(t, addr, 60*time.Second, func(st api.Status) bool { return st.Committed == n && st.SourceLag == 0 && st.Pending == 0 },
		func() string { cancel(); return (<-done).stderr })
	cancel()
	r = <-done
	if r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	// The in-process cache is not safe for several instances: the default
	// is off with a shared source (docs/cache.md).
	if !strings.Contains(r.stderr, "write cache off)") {
		t.Fatalf("run on a shared source: the start line does not say the write cache is off\n%s", r.stderr)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if d := diffExport(t, exp.stdout, wl.Model); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
}

// HTTP ingest into Kinesis with two graft run instances sharing the stream
// (and one store): a POST with ?wait=committed to one instance answers once
// every record is committed, including those on the shard the other
// instance holds; the answer names the bad line; a key longer than Kinesis's
// 256-character partition keys is stored (digested partition key); every
// write is readable as soon as the answer comes, and the graph equals the
// model.
func TestHTTPIngestIntoKinesis(t *testing.T) {
	kEndpoint, dEndpoint := awstest.Kinesalite(t), awstest.Dynalite(t)
	awstest.UseEnv(t)
	ctx := context.Background()
	kc := awstest.Kinesis(t, kEndpoint)
	awstest.CreateStream(t, kc, "ingest", 2)
	source := "kinesis://ingest?region=" + awstest.Region + "&endpoint=" + kEndpoint + "&dynamodb_endpoint=" + dEndpoint + "&lease_ttl=2s"
	store := "sqlite:" + filepath.Join(t.TempDir(), "graph.db")
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	addrs := []string{freeAddr(t), freeAddr(t)}
	done := make(chan result, 2)
	for i, addr := range addrs {
		go func() {
			done <- graftCtx(rctx, t, nil, "run", "--data-dir", t.TempDir(), "--listen", addr, "--sink", store, "--cache", "off", "--source", source+"&worker=w"+strconv.Itoa(i))
		}()
		waitUp(t, addr, func() string { cancel(); return (<-done).stderr })
	}
	// Both instances hold one shard each.
	db := awstest.DynamoDB(t, dEndpoint)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("graft-ingest"), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		owners := map[string]int{}
		for _, it := range out.Items {
			if o, ok := it["owner"].(*ddbtypes.AttributeValueMemberS); ok {
				owners[o.Value]++
			}
		}
		if owners["w0"] == 1 && owners["w1"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leases %v, want one shard each", owners)
		}
		time.Sleep(100 * time.Millisecond)
	}

	want := model.New()
	long := strings.Repeat("k", 300)
	var lines []string
	var ids []string
	for i := range 60 {
		key, id := fmt.Sprintf("key-%d", i%20), fmt.Sprintf("v:%d", i)
		if i == 7 {
			key = long
		}
		lines = append(lines, fmt.Sprintf(`{"key":%q,"ops":[{"op":"upsertVertex","id":%q,"label":"note","props":{"n":%d,"q":"'; DROP TABLE vertices; --"}}]}`, key, id, i))
		ids = append(ids, id)
	}
	body := strings.Join(lines[:30], "\n") + "\n" + `{"ops":[{"op":"upsertVertex","id":"x"}]}` + "\n" + strings.Join(lines[30:], "\n")
	resp, err := http.Post("http://"+addrs[0]+"/v1/writes?wait=committed", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var wr api.WritesResponse
	json.NewDecoder(resp.Body).Decode(&wr)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !wr.Committed || wr.Accepted != 60 || len(wr.Invalid) != 1 || wr.Invalid[0].Index != 30 || !strings.Contains(wr.Invalid[0].Error, "label") {
		t.Fatalf("POST ?wait=committed: %d %+v", resp.StatusCode, wr)
	}
	for _, l := range lines {
		w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := want.ApplyWrite(w); err != nil {
			t.Fatal(err)
		}
	}
	// Committed means readable now, whichever instance applied it.
	for i, id := range ids {
		r, err := http.Get("http://" + addrs[0] + "/v1/vertices/" + url.PathEscape(id))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(b), fmt.Sprintf(`"n":%d`, i)) {
			t.Fatalf("vertex %s right after the committed answer: %d %s", id, r.StatusCode, b)
		}
	}
	// Each instance reports its lease in the metrics. Under load a renewal
	// can come late and a lease move (lease_ttl is 2s here): the balance
	// comes back, so wait for it.
	for _, addr := range addrs {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			missing := ""
			for _, want := range []string{"graft_kinesis_leases_held 1\n", `graft_kinesis_lease_events_total{event="taken"} `} {
				if !strings.Contains(string(b), want) {
					missing = want
				}
			}
			if missing == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("metrics of %s lack %q", addr, missing)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Records landed on both shards, so both instances applied some. A
	// lease that moved under load (lease_ttl is 2s here) makes its new
	// owner replay from the last checkpoint: more than 60, never fewer.
	var st [2]api.Status
	for i, addr := range addrs {
		st[i] = waitUp(t, addr, nil)
	}
	if st[0].Committed == 0 || st[1].Committed == 0 || st[0].Committed+st[1].Committed < 60 {
		t.Fatalf("committed %d and %d, want the 60 writes shared by both instances", st[0].Committed, st[1].Committed)
	}
	cancel()
	for range addrs {
		r := <-done
		if r.code != 0 {
			t.Fatalf("run: exit %d %s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "in-process write cache assumes") {
			t.Fatalf("warning with --cache off:\n%s", r.stderr)
		}
	}
	exp := graftCmd(t, nil, "export", "--data-dir", t.TempDir(), "--sink", store)
	if d := diffExport(t, exp.stdout, want); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
}

// waitUp waits until graft run at addr answers /v1/status, and returns it.
func waitUp(t *testing.T, addr string, stop func() string) api.Status {
	t.Helper()
	return waitStatus(t, addr, 30*time.Second, func(api.Status) bool { return true }, stop)
}
