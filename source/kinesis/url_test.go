package kinesis_test

import (
	"strings"
	"testing"
	"time"

	ksource "github.com/graftdb/graft/source/kinesis"
)

// A kinesis:// URL: defaults, every parameter, and errors naming the one at
// fault.
func TestParseURL(t *testing.T) {
	c, err := ksource.ParseURL("kinesis://writes?region=eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Stream != "writes" || c.Table != "graft-writes" || c.Start != "trim_horizon" || c.MaxRecords != 1000 ||
		c.LeaseTTL != 10*time.Second || c.CheckpointInterval != time.Second || c.Worker != "" {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = ksource.ParseURL("kinesis://writes?region=eu-west-1&table=t&start=latest&max_records=50&worker=w1&lease_ttl=30s&checkpoint_interval=5s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "t" || c.Start != "latest" || c.MaxRecords != 50 || c.Worker != "w1" || c.LeaseTTL != 30*time.Second || c.CheckpointInterval != 5*time.Second {
		t.Fatalf("parameters: %+v", c)
	}
	for raw, want := range map[string]string{
		"kinesis:///?region=r":                           "want kinesis://STREAM",
		"kafka://writes":                                 "want kinesis://STREAM",
		"kinesis://w?lease_tll=5s":                       `unknown parameter "lease_tll"`,
		"kinesis://w?lease_ttl=10":                       `lease_ttl="10"`,
		"kinesis://w?lease_ttl=500ms":                    `lease_ttl="500ms"`,
		"kinesis://w?checkpoint_interval=1h":             `checkpoint_interval="1h"`,
		"kinesis://w?max_records=0":                      `max_records="0"`,
		"kinesis://w?start=yesterday":                    `start="yesterday"`,
		"kinesis://w?start=2026-01-02T03:04:05Z&x=1":     `unknown parameter "x"`,
		"kinesis://w?max_records=10001&region=us-east-1": `max_records="10001"`,
	} {
		if _, err := ksource.ParseURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %s", raw, err, want)
		}
	}
}
