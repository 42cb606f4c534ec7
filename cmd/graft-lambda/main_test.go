package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/graftdb/graft"
)

// The environment is checked at start, naming the variable; a configured
// handler runs a batch into the sink.
func TestSetup(t *testing.T) {
	t.Setenv("GRAFT_SINK", "")
	if _, err := setup(context.Background()); err == nil || !strings.Contains(err.Error(), "GRAFT_SINK") {
		t.Fatalf("no sink: %v", err)
	}
	t.Setenv("GRAFT_SINK", "sqlite:"+filepath.Join(t.TempDir(), "graph.db"))
	t.Setenv("GRAFT_MAX_RECORD_AGE", "soon")
	if _, err := setup(context.Background()); err == nil || !strings.Contains(err.Error(), "GRAFT_MAX_RECORD_AGE") {
		t.Fatalf("bad age: %v", err)
	}
	t.Setenv("GRAFT_MAX_RECORD_AGE", "")
	t.Setenv("GRAFT_MAPPING", filepath.Join("..", "..", "examples", "seed", "mapping.yaml"))
	h, err := setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ev := events.KinesisEvent{Records: []events.KinesisEventRecord{{EventID: "shardId-0:1", Kinesis: events.KinesisRecord{
		SequenceNumber: "1", PartitionKey: "o",
		Data: []byte(`{"type":"DeviceSoftwareUpdated","organizationId":"o","deviceId":"d","software":[{"name":"a","version":"1"}]}`)}}}}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%+v %v", resp, err)
	}
	r, ok := h.Sink.(graft.Reader)
	if !ok {
		t.Fatal("the sqlite sink reads")
	}
	if v, err := r.Vertex(context.Background(), "dev:d"); err != nil || v.Label != "device" {
		t.Fatalf("the mapped write was not applied: %+v %v", v, err)
	}
}
