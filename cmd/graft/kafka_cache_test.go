package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft/internal/kafkatest"
)

// Two instances of one group share a graph, and an element is written from
// partitions each of them owns: here two topics (the seed's graph.write.*),
// each subscribed by one instance, so that who reads what is fixed. v.p
// is set to 1 from the first, to 2 from the second, then to 1 again from
// the first. With an in-process write cache the first instance still held
// "v.p = 1" and eliminated its last write as already there, leaving 2. The
// default (cache auto) is off with a Kafka source, and --cache memory is
// refused with one.
func TestSharedElementFromTwoInstances(t *testing.T) {
	kafkatest.OnBrokers(t, sharedElementFromTwoInstances)
}

func sharedElementFromTwoInstances(t *testing.T, kind string) {
	brokers, prefix := kafkatest.Broker(t, kind, map[string]int32{"graph.write.A": 1, "graph.write.B": 1})
	topicA, topicB := prefix+"graph.write.A", prefix+"graph.write.B"
	db := "sqlite:" + filepath.Join(t.TempDir(), "graph.db")
	url := func(topic string) string {
		return "kafka://" + strings.Join(brokers, ",") + "/" + topic + "?group=" + prefix + "graft"
	}

	refusal, cancelRefusal := context.WithTimeout(context.Background(), 30*time.Second) // it must not run
	defer cancelRefusal()
	r := graftCtx(refusal, t, nil, "run", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--sink", db, "--source", url(topicA), "--cache", "memory")
	if r.code != 2 || !strings.Contains(r.stderr, "cache.use: memory with source kafka://") || !strings.Contains(r.stderr, "redis://") {
		t.Fatalf("--cache memory with a Kafka source: exit %d, want 2 and an error naming cache.use and the shared cache\n%s", r.code, r.stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrA := freeAddr(t)
	done := make(chan result, 2)
	for _, in := range []struct{ topic, addr string }{{topicA, addrA}, {topicB, freeAddr(t)}} {
		go func() {
			done <- graftCtx(ctx, t, nil, "run", "--data-dir", t.TempDir(), "--listen", in.addr, "--sink", db, "--source", url(in.topic))
		}()
	}
	stop := func() string {
		cancel()
		var out string
		for range 2 {
			r := <-done
			if r.code != 0 {
				t.Errorf("run: exit %d\n%s", r.code, r.stderr)
			}
			out += r.stderr
		}
		return out
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(topic, id string, p int) {
		t.Helper()
		v := fmt.Sprintf(`{"key":"k","ops":[{"op":"upsertVertex","id":%q,"label":"x","props":{"p":%d}}]}`, id, p)
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// p reads a vertex's p through the first instance's API (-1: no vertex).
	p := func(id string) int {
		resp, err := http.Get("http://" + addrA + "/v1/vertices/" + id)
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v struct {
			Props struct{ P *int } `json:"props"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &v) != nil || v.Props.P == nil {
			return -1
		}
		return *v.Props.P
	}
	waitFor := func(id string, want int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); p(id) != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s.p = %d, want %d\n%s", id, p(id), want, stop())
			}
		}
	}
	produce(topicA, "v", 1)
	waitFor("v", 1)
	produce(topicB, "v", 2)
	waitFor("v", 2)
	produce(topicA, "v", 1)
	// A mark after it in the same partition: once it is there, the write
	// before it has been applied (or eliminated).
	produce(topicA, "mark", 1)
	waitFor("mark", 1)
	if got := p("v"); got != 1 {
		t.Fatalf("v.p = %d after the first instance set it back to 1: its write was eliminated on a stale cached fact", got)
	}
	if out := stop(); !strings.Contains(out, "write cache off") {
		t.Errorf("the start line does not say the write cache is off:\n%s", out)
	}
}
