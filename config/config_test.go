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
