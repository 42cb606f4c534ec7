package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/api"
	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/kafkaserver"
	"github.com/graftdb/graft/internal/kafkatest"
	"github.com/graftdb/graft/source/kafka"
)

func TestRunWithKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "graph.write.Org"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("graph.write.Org"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		v := fmt.Sprintf(`{"ops":[{"op":"upsertVertex","id":"org:%d","label":"organization","props":{"n":%d}}]}`, i%5, i)
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Key: []byte(fmt.Sprint(i % 5)), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result)
	src := "kafka://" + strings.Join(c.ListenAddrs(), ",") + `/graph\.write\..*?group=graft`
	go func() {
		done <- graftCtx(ctx, t, nil, "run", "--data-dir", t.TempDir(), "--listen", addr, "--source", src)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/vertices/org:4")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"n":19`) {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("org:4 never reached its last write: %v\n%s", err, (<-done).stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
}

// graft produce checks every line, produces the valid ones keyed by their
// write key (one key's writes in one partition, in file order) and reports
// the others by line; graft run consumes the topic, takes writes over HTTP
// into the same topic (?wait=committed answers once the group committed
// them), sends dead letters to the dead-letter topic, and reports the group's
// lag. The final graph equals the model.
// On kfake and on a real Apache Kafka broker (internal/kafkaserver).
func TestProduceAndRunWithKafka(t *testing.T) {
	kafkatest.OnBrokers(t, produceAndRunWithKafka)
}

func produceAndRunWithKafka(t *testing.T, kind string) {
	brokers, prefix := kafkatest.Broker(t, kind, map[string]int32{"graph.write.Device": 6, "graph.dlq": 1})
	in, dead := prefix+"graph.write.Device", prefix+"graph.dlq"
	cfg := bench.DefaultFleet()
	cfg.Orgs, cfg.DevicesPerOrg, cfg.SoftwarePerOrg, cfg.SoftwarePerDevice = 8, 3, 10, 4
	wl, err := bench.NewWorkload(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i, w := range wl.Writes {
		lines = append(lines, string(w.AppendJSON(nil)))
		if i == 10 {
			lines = append(lines, `{"ops":[{"op":"upsertVertx","id":"x","label":"y"}]}`)
		}
		if i == 20 {
			lines = append(lines, `{"ops":[{"op":"upsertVertex","id":"big","label":"y","props":{"blob":"`+strings.Repeat("z", 70000)+`"}}]}`)
		}
	}
	file := writeFile(t, lines...)
	rejects := filepath.Join(t.TempDir(), "rejects.ndjson")
	to := "kafka://" + strings.Join(brokers, ",") + "/" + in
	r := graftCmd(t, nil, "produce", "--to", to, "--rejects", rejects, "--max-record-bytes", "65536", "--json", file)
	if r.code != 1 {
		t.Fatalf("produce with two bad lines: exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{file + ":12: ops[0].op: unknown op \"upsertVertx\"", file + ":23: record is 70074 bytes, over the limit of 65536 bytes", "2 lines not produced"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("produce stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	var sum produceSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.Produced != int64(len(wl.Writes)) || sum.Rejected != 2 {
		t.Fatalf("produce summary %+v (%v), want %d produced, 2 rejected", sum, err, len(wl.Writes))
	}
	rej, _ := os.ReadFile(rejects)
	if rl := strings.Split(strings.TrimSpace(string(rej)), "\n"); len(rl) != 2 || rl[0] != lines[11] || !strings.HasPrefix(lines[22], rl[1]) {
		t.Fatalf("rejects file: %d lines, want the two bad lines verbatim (the oversized one cut at the limit)", len(rl))
	}

	// Keys and order: each write's key, one partition per key, file order.
	recs := kafkatest.Records(t, brokers, in, len(wl.Writes))
	where := map[string]int32{}
	last := map[string]int{}
	index := map[string]int{}
	for i, w := range wl.Writes {
		index[string(w.AppendJSON(nil))] = i
	}
	for _, rec := range recs {
		i, ok := index[string(rec.Value)]
		if !ok {
			t.Fatalf("record not in the input: %.80s", rec.Value)
		}
		key := wl.Writes[i].Key
		if string(rec.Key) != key {
			t.Fatalf("record %d: key %q, want the write key %q", i, rec.Key, key)
		}
		if p, seen := where[key]; seen && p != rec.Partition {
			t.Fatalf("key %q in partitions %d and %d", key, p, rec.Partition)
		}
		if j, seen := last[key]; seen && j > i {
			t.Fatalf("key %q: write %d after write %d in the partition", key, i, j)
		}
		where[key], last[key] = rec.Partition, i
	}

	// graft run on the topic, with a dead-letter topic.
	addr := freeAddr(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result)
	go func() {
		done <- graftCtx(ctx, t, nil, "run", "--data-dir", dir, "--listen", addr, "--source", to+"?group=graft&dlq="+dead)
	}()
	post := `{"key":"org:0","ops":[{"op":"upsertVertex","id":"http:1","label":"note","props":{"via":"http"}}]}` + "\n" +
		`{"ops":[{"op":"upsertVertex","id":"http:2","label":"note","props":{"n":2}}]}` + "\n" +
		`{"ops":[{"op":"upsertVertex","id":"http:3","label":"note","props":{"n":{"nested":true}}}]}` + "\n"
	var resp *http.Response
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err = http.Post("http://"+addr+"/v1/writes?wait=committed", "application/x-ndjson", strings.NewReader(post))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("graft run never answered: %v\n%s", err, (<-done).stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"committed":true`) || !strings.Contains(string(body), `"accepted":2`) {
		t.Fatalf("POST ?wait=committed: %d %s", resp.StatusCode, body)
	}
	for _, l := range strings.Split(strings.TrimSpace(post), "\n")[:2] {
		w, err := graft.Decode([]byte(l), "", graft.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if err := wl.Model.ApplyBatch([]*graft.Write{w}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything consumed: the group's lag drops to 0.
	want := int64(len(wl.Writes) + 2)
	waitStatus(t, addr, 30*time.Second, func(st api.Status) bool { return st.Committed == want && st.SourceLag == 0 }, nil)
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", dir)
	if d := diffExport(t, exp.stdout, wl.Model); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
	// The invalid HTTP write is in the dead-letter topic, not in the file.
	letters := kafkatest.Records(t, brokers, dead, 1)
	l := letters[0]
	hs := map[string]string{}
	for _, h := range l.Headers {
		hs[h.Key] = string(h.Value)
	}
	if string(l.Value) != strings.Split(post, "\n")[2] || hs[kafka.HeaderClass] != "permanent" || hs[kafka.HeaderPosition] != "http:2" ||
		!strings.Contains(hs[kafka.HeaderMessage], "ops[0].props.n") {
		t.Fatalf("dead letter: %q %v", l.Value, hs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "deadletters.ndjson")); len(b) != 0 {
		t.Fatalf("dead letters went to the file too: %s", b)
	}
	q := graftCmd(t, nil, "run", "--data-dir", t.TempDir(), "--policy", "quarantine", "--source", to+"?group=graft&dlq="+dead)
	if q.code != 2 || !strings.Contains(q.stderr, "quarantine") {
		t.Fatalf("quarantine with a dead-letter topic: exit %d %s", q.code, q.stderr)
	}
}

// TestMain stops the package's Kafka broker, if a test started one.
func TestMain(m *testing.M) {
	code := m.Run()
	kafkaserver.StopShared()
	os.Exit(code)
}
