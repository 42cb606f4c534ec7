package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/engine"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "graft.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadOverDefaultsWithEnv(t *testing.T) {
	t.Setenv("GRAFT_TEST_SECRET", `s3"cr:et`)
	c, err := config.Load(write(t, `
data_dir: /var/lib/graft
auth:
  token: ${GRAFT_TEST_SECRET}
batch:
  linger: 12ms
dead_letters:
  policy: quarantine
# ${NOT_EXPANDED_IN_COMMENTS}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/var/lib/graft" || c.Auth.Token != `s3"cr:et` || c.Batch.Linger != 12*time.Millisecond {
		t.Fatalf("got %+v", c)
	}
	if c.Batch.MaxWrites != config.Default().Batch.MaxWrites || c.Listen != config.DefaultListen {
		t.Fatalf("defaults lost: %+v", c)
	}
	e := c.Engine()
	if e.Policy != engine.Quarantine || e.Linger != 12*time.Millisecond {
		t.Fatalf("engine config %+v", e)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(c.YAML()), "s3") {
		t.Fatal("print shows the token")
	}
}

func TestErrorsNameTheField(t *testing.T) {
	for text, want := range map[string]string{
		"token: ${GRAFT_SURELY_UNSET}": "graft.yaml:1: ${GRAFT_SURELY_UNSET} is not set",
		"batch:\n  max_writez: 3":      "line 2: unknown field max_writez",
		"concurrency: lots":            "line 1: cannot unmarshal",
		"retry:\n  park_for: soon":     "line 2",
	} {
		_, err := config.Load(write(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
	c, err := config.Load(write(t, "batch:\n  max_writes: -1\nsource: ftp://x\ncache:\n  size: 0\nretry:\n  backoff_base: 10s\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	for _, want := range []string{"batch.max_writes: must not be negative", "source: \"ftp://x\"", "cache.size", "retry.backoff_base: 10s is above retry.backoff_max"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
	if c, err := config.Load(write(t, "")); err != nil || c.DataDir != config.Default().DataDir {
		t.Errorf("empty file: %v", err)
	}
}

// The kafka:, cache: and lock: sections: validated by field, secrets masked
// in print.
func TestSecretsAndRedisSections(t *testing.T) {
	t.Setenv("KAFKA_PASSWORD", "kafka-s3cret")
	c, err := config.Load(write(t, "kafka:\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: graft\n    password: ${KAFKA_PASSWORD}\n"+
		"cache:\n  use: redis://u:redis-s3cret@127.0.0.1:6379/0\nlock:\n  use: rediss://u:lock-s3cret@h:6380/1\n  ttl: 5s\nlimits:\n  max_record_age: 24h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid sections refused: %v", err)
	}
	if c.Engine().MaxRecordAge != 24*time.Hour || c.Engine().LockTTL != 5*time.Second {
		t.Fatalf("engine settings: %+v", c.Engine())
	}
	out := string(c.YAML())
	for _, secret := range []string{"kafka-s3cret", "redis-s3cret", "lock-s3cret"} {
		if strings.Contains(out, secret) {
			t.Errorf("print shows %s:\n%s", secret, out)
		}
	}
	bad, err := config.Load(write(t, "cache:\n  use: memcache://x\n  size: -1\nlock:\n  use: zookeeper://x\n  ttl: 10ms\nkafka:\n  sasl:\n    mechanism: GSSAPI\nlimits:\n  max_record_age: -1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Validate()
	for _, want := range []string{`cache.use: "memcache://x"`, `lock.use: "zookeeper://x"`, "lock.ttl: 10ms is too short", `kafka.sasl.mechanism: "GSSAPI"`, "limits.max_record_age: must not be negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: want %q in %v", want, err)
		}
	}
}

// The write cache follows the source: auto is the in-process cache for a
// source one instance reads, and off for one whose partitions move between
// instances (Kafka, Kinesis), with which memory alone is refused.
func TestCacheFollowsTheSource(t *testing.T) {
	for _, c := range []struct {
		source, use string
		want        string // CacheUse, or the error's text
		size        int    // the engine's CacheSize
	}{
		{"", "auto", "memory", 50000},
		{"file:w.ndjson", "auto", "memory", 50000},
		{"nats://h:4222/S/s", "auto", "memory", 50000},
		{"kafka://h:9092/t?group=g", "auto", "off", -1},
		{"kinesis://s?region=r", "auto", "off", -1},
		{"kafka://h:9092/t?group=g", "redis://h:6379/0", "redis://h:6379/0", 50000},
		{"kafka://h:9092/t?group=g", "off", "off", -1},
		{"", "memory", "memory", 50000},
		{"kafka://h:9092/t?group=g", "memory", "cache.use: memory with source kafka://h:9092/t?group=g", 0},
		{"kinesis://s?region=r", "memory", "cache.use: memory with source kinesis://s", 0},
	} {
		cfg := config.Default()
		cfg.Source, cfg.Cache.Use = c.source, c.use
		err := cfg.Validate()
		if c.size == 0 {
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "redis://") {
				t.Errorf("%s with cache %s: %v, want an error with %q naming the shared cache", c.source, c.use, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s with cache %s: %v", c.source, c.use, err)
		}
		if got := cfg.CacheUse(); got != c.want {
			t.Errorf("%s with cache %s: in use %s, want %s", c.source, c.use, got, c.want)
		}
		if got := cfg.Engine().CacheSize; got != c.size {
			t.Errorf("%s with cache %s: engine CacheSize %d, want %d", c.source, c.use, got, c.size)
		}
	}
}

// versions: derive needs a source that derives versions and a sink that
// guards them; a bad value names the setting.
func TestVersionsSetting(t *testing.T) {
	for _, c := range []struct{ source, sink, versions, want string }{
		{"", "", "derive", ""},
		{"kafka://h:9092/t?group=g", "postgres://u@h/db", "derive", ""},
		{"kinesis://s?region=r", "", "derive", "versions: derive with source kinesis://"},
		{"", "gremlin+ws://h:8182/gremlin", "derive", "versions: derive with sink gremlin+ws://"},
		{"", "gremlin+ws://h:8182/gremlin", "producer", ""},
		{"", "", "newest", `versions: "newest"`},
	} {
		cfg := config.Default()
		cfg.Source, cfg.Sink, cfg.Versions = c.source, c.sink, c.versions
		err := cfg.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s → %s, versions %s: %v, want %q", c.source, c.sink, c.versions, err, c.want)
		}
		if c.want == "" && cfg.Engine().DeriveVersions != (c.versions == "derive") {
			t.Errorf("versions %s: engine DeriveVersions %v", c.versions, cfg.Engine().DeriveVersions)
		}
	}
}
