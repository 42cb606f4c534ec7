package config

import (
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"GRAFT_SINK":                  "postgres://h/db",
		"GRAFT_BATCH_MAX_WRITES":      "250",
		"GRAFT_LIMITS_MAX_RECORD_AGE": "24h",
		"GRAFT_STREAM_SYNC_ALWAYS":    "true",
		"GRAFT_KAFKA_SASL_MECHANISM":  "PLAIN",
		"GRAFT_HTTP_MAX_BODY_BYTES":   "1024",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := FromEnv(Default(), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sink != "postgres://h/db" || c.Batch.MaxWrites != 250 || c.Limits.MaxRecordAge != 24*time.Hour || !c.Stream.SyncAlways ||
		c.Kafka.SASL.Mechanism != "PLAIN" || c.HTTP.MaxBodyBytes != 1024 {
		t.Fatalf("%+v", c)
	}
	// Untouched settings keep their values.
	if c.DataDir != Default().DataDir || c.Retry.ParkFor != Default().Retry.ParkFor {
		t.Fatalf("defaults changed: %+v", c)
	}
	env = map[string]string{"GRAFT_BATCH_MAX_WRITES": "many", "GRAFT_RETRY_PARK_FOR": "3"}
	_, err = FromEnv(Default(), lookup)
	for _, want := range []string{`GRAFT_BATCH_MAX_WRITES="many" (batch.max_writes): want an integer`, `GRAFT_RETRY_PARK_FOR="3" (retry.park_for): want a duration`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

// Every setting has a variable, and none is of a type the environment
// cannot set.
func TestEveryPathFromEnv(t *testing.T) {
	paths := Paths()
	if len(paths) < 30 {
		t.Fatalf("only %d settings: %v", len(paths), paths)
	}
	for _, p := range paths {
		_, err := FromEnv(Default(), func(k string) (string, bool) {
			if k != EnvName(p) {
				return "", false
			}
			return "1", true
		})
		if err != nil && strings.Contains(err.Error(), "cannot come from the environment") {
			t.Errorf("%s: %v", p, err)
		}
	}
}
