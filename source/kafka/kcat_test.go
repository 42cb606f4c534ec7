package kafka_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/kafkatest"
	"github.com/graftdb/graft/internal/memgraph"
	"github.com/graftdb/graft/source/kafka"
)

// kcat returns the kcat binary; the test command installs it. Without it the
// test skips, except under CI=true where it fails.
func kcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		path, err = exec.LookPath("kafkacat")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is required under CI=true (apt-get install kcat; scripts/test installs it)")
		}
		t.Skip("no kcat (CI=true makes this a failure)")
	}
	return path
}

// Interoperability with a client we did not write: kcat (librdkafka)
// produces the fleet workload keyed by organization, Graft consumes it into
// the graph, and kcat reads Graft's dead-letter topic back with its headers.
func TestKcatInterop(t *testing.T) {
	kafkatest.OnBrokers(t, kcatInterop)
}

func kcatInterop(t *testing.T, kind string) {
	bin := kcat(t)
	wl := workload(t)
	addrs, prefix := kafkatest.Broker(t, kind, map[string]int32{topic: 12, "graph.dlq": 1})
	topic, dead, group := prefix+topic, prefix+"graph.dlq", prefix+"graft"
	brokers := strings.Join(addrs, ",")
	var in bytes.Buffer
	for i, w := range wl.Writes {
		in.WriteString(w.Key + "\t")
		in.Write(w.AppendJSON(nil)) // JSON escapes tabs and newlines: one message a line
		in.WriteByte('\n')
		if i == len(wl.Writes)/3 {
			in.WriteString("org:poison\t{\"ops\":[{\"op\":\"upsertVertex\",\"id\":7,\"label\":\"x\"}]}\n")
		}
	}
	file := filepath.Join(t.TempDir(), "in.tsv")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-P", "-b", brokers, "-t", topic, "-K", "\t", "-l", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	dlqTopic, err := kafka.NewDeadLetterTopic(kafka.Target{Brokers: addrs, Topic: dead}, kafka.Security{})
	if err != nil {
		t.Fatal(err)
	}
	defer dlqTopic.Close()
	src, err := kafka.New(kafka.Config{Brokers: addrs, Topics: []string{topic}, Group: group}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := memgraph.New()
	e, err := engine.New(&memgraph.Sink{Graph: g}, dlqTopic, groupConfig())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, src) }()
	waitForModel(t, g, wl)
	stop()
	<-done
	src.Close()

	out, err = exec.CommandContext(ctx, bin, "-C", "-b", brokers, "-t", dead, "-o", "beginning", "-e", "-q", "-f", "%k|%h|%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	for _, want := range []string{"org:poison|", "graft.error.class=permanent", "graft.source.topic=" + topic, "graft.error.message=ops[0].id: must be a string, not number", `|{"ops":[{"op":"upsertVertex","id":7,"label":"x"}]}`} {
		if !strings.Contains(got, want) {
			t.Errorf("kcat's view of the dead-letter topic lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 1 {
		t.Errorf("%d dead letters, want the one poison record:\n%s", n, got)
	}
}
