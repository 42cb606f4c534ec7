package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.yaml.in/yaml/v3"

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
	if _, err := setup(context.Background()); err == nil || !strings.Contains(err.Error(), "MAX_RECORD_AGE") {
		t.Fatalf("bad age: %v", err)
	}
	t.Setenv("GRAFT_MAX_RECORD_AGE", "")
	t.Setenv("GRAFT_FAILURE_MODE", "sometimes")
	if _, err := setup(context.Background()); err == nil || !strings.Contains(err.Error(), "GRAFT_FAILURE_MODE") {
		t.Fatalf("bad failure mode: %v", err)
	}
	t.Setenv("GRAFT_FAILURE_MODE", "error")
	t.Setenv("GRAFT_MAPPING", filepath.Join("..", "..", "examples", "fleet", "mapping.yaml"))
	h, err := setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !h.FailWhole {
		t.Fatal("GRAFT_FAILURE_MODE=error not applied")
	}
	// Every engine setting comes from the environment too.
	t.Setenv("GRAFT_BATCH_MAX_WRITES", "7")
	t.Setenv("GRAFT_RETRY_PARK_FOR", "3s")
	t.Setenv("GRAFT_MAX_RECORD_AGE", "48h")
	if h, err = setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.Config.MaxBatchWrites != 7 || h.Config.ParkFor != 3*time.Second || h.Config.MaxRecordAge != 48*time.Hour {
		t.Fatalf("engine settings from the environment not applied: %+v", h.Config)
	}
	t.Setenv("GRAFT_BATCH_MAX_WRITES", "-1")
	if _, err := setup(context.Background()); err == nil || !strings.Contains(err.Error(), "batch.max_writes") {
		t.Fatalf("a negative batch size: %v", err)
	}
	t.Setenv("GRAFT_BATCH_MAX_WRITES", "")
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

// The SAM template's mappings keep the settings the handler relies on:
// partial batch responses on (the default GRAFT_FAILURE_MODE would
// otherwise skip failed records), no bisecting, one batch per shard at a
// time, and provisioned pollers for the Kafka mapping's partial responses.
func TestSAMTemplate(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "sam", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Properties struct {
				Events map[string]struct {
					Type       string         `yaml:"Type"`
					Properties map[string]any `yaml:"Properties"`
				} `yaml:"Events"`
				FunctionResponseTypes   []string       `yaml:"FunctionResponseTypes"`
				ProvisionedPollerConfig map[string]any `yaml:"ProvisionedPollerConfig"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := doc.Decode(&tmpl); err != nil {
		t.Fatal(err)
	}
	ev := tmpl.Resources["GraftWriter"].Properties.Events["Stream"]
	if ev.Type != "Kinesis" || fmt.Sprint(ev.Properties["FunctionResponseTypes"]) != "[ReportBatchItemFailures]" ||
		ev.Properties["BisectBatchOnFunctionError"] != false || ev.Properties["ParallelizationFactor"] != 1 {
		t.Fatalf("Kinesis mapping %+v", ev)
	}
	msk := tmpl.Resources["MskMapping"].Properties
	if fmt.Sprint(msk.FunctionResponseTypes) != "[ReportBatchItemFailures]" || msk.ProvisionedPollerConfig == nil {
		t.Fatalf("MSK mapping %+v", msk)
	}
}
