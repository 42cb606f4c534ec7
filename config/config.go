// Package config is Graft's file configuration: graft.yaml, with ${ENV}
// expansion, defaults for everything, and validation whose errors name the
// field. Command-line flags override it (see cmd/graft).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/source/kafka"
)

// Config is every setting of graft. The zero value of a field is replaced by
// its default in Default.
type Config struct {
	DataDir string `yaml:"data_dir"`
	Listen  string `yaml:"listen"`
	Source  string `yaml:"source"` // "" (embedded JetStream) or one of Sources
	Sink    string `yaml:"sink"`   // "" (sqlite:<data_dir>/graph.db) or one of Sinks
	// Mapping is a mapping-rules file: records are domain events mapped to
	// writes (docs/mapping.md); empty: records are writes.
	Mapping string `yaml:"mapping"`

	Auth struct {
		Token string `yaml:"token"`
	} `yaml:"auth"`
	HTTP struct {
		MaxBodyBytes int64 `yaml:"max_body_bytes"`
		// MaxInvalid is how many invalid records one POST /v1/writes may
		// hold: they are dead-lettered and listed in the answer; a request
		// with more is refused whole (400), so that no request can make the
		// service write more than this many letters.
		MaxInvalid int `yaml:"max_invalid"`
		// ReadTimeout bounds reading one request, body included;
		// MaxConnections bounds the connections served at once.
		ReadTimeout    time.Duration `yaml:"read_timeout"`
		MaxConnections int           `yaml:"max_connections"`
		// AllowedHosts are the Host headers the API answers besides the
		// listen address's own (on a loopback address: only loopback names,
		// against DNS rebinding); AllowedOrigins the browser origins that
		// may call it (none by default).
		AllowedHosts   []string `yaml:"allowed_hosts"`
		AllowedOrigins []string `yaml:"allowed_origins"`
	} `yaml:"http"`
	Stream struct {
		SyncAlways bool `yaml:"sync_always"`
		// MaxBytes bounds the embedded stream's backlog; past it POST
		// /v1/writes answers 503 with Retry-After. Acknowledged messages
		// are removed, so the stream holds the backlog only.
		MaxBytes int64 `yaml:"max_bytes"`
	} `yaml:"stream"`
	Limits struct {
		MaxRecordBytes int           `yaml:"max_record_bytes"`
		MaxOps         int           `yaml:"max_ops"`
		MaxRecordAge   time.Duration `yaml:"max_record_age"`
	} `yaml:"limits"`
	Batch struct {
		MaxWrites int           `yaml:"max_writes"`
		MaxUnits  int           `yaml:"max_units"`
		MaxBytes  int           `yaml:"max_bytes"`
		Linger    time.Duration `yaml:"linger"`
	} `yaml:"batch"`
	Concurrency        int `yaml:"concurrency"`
	MaxInflightRecords int `yaml:"max_inflight_records"`
	MaxInflightBytes   int `yaml:"max_inflight_bytes"`
	// MaxInflightPerPartition: a Kafka partition holding this many records
	// not yet done is paused (resumed at half), so that a rebalance drains
	// quickly under a backlog; 0: 1000; -1: no bound.
	MaxInflightPerPartition int `yaml:"max_inflight_per_partition"`
	// Versions is producer (default: a write's version is the one its
	// producer gave, if any) or derive (a write without one gets the
	// version its source derives: docs/DESIGN.md, "Versions").
	Versions string `yaml:"versions"`
	Retry    struct {
		BackoffBase time.Duration `yaml:"backoff_base"`
		BackoffMax  time.Duration `yaml:"backoff_max"`
		ParkDelay   time.Duration `yaml:"park_delay"`
		ParkFor     time.Duration `yaml:"park_for"`
	} `yaml:"retry"`
	DeadLetters struct {
		Policy string `yaml:"policy"`
	} `yaml:"dead_letters"`
	Cache struct {
		// Use is auto (default: memory, or off with a source whose
		// partitions move between instances), memory (in-process),
		// redis://HOST:PORT/DB (shared by every graft process of the graph;
		// rediss:// for TLS; memory stays in front), or off.
		Use  string `yaml:"use"`
		Size int    `yaml:"size"`
	} `yaml:"cache"`
	// Lock is the locker: a lease per key for every batch, for deployments
	// where one key can reach several graft processes.
	Lock struct {
		Use string        `yaml:"use"` // "" (none) or redis://HOST:PORT/DB[?prefix=…]
		TTL time.Duration `yaml:"ttl"`
	} `yaml:"lock"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// Kafka is how every Kafka client authenticates (TLS, SASL).
	Kafka kafka.Security `yaml:"kafka"`
}

// DefaultListen is the HTTP API's default address.
const DefaultListen = "127.0.0.1:8470"

// Default returns the defaults.
func Default() Config {
	e := engine.Default()
	var c Config
	c.DataDir = "./graft-data"
	c.Listen = DefaultListen
	c.HTTP.MaxBodyBytes = 32 << 20
	c.HTTP.MaxInvalid = 100
	c.Stream.MaxBytes = 1 << 30
	c.HTTP.ReadTimeout = time.Minute
	c.HTTP.MaxConnections = 1024
	c.Limits.MaxRecordBytes, c.Limits.MaxOps = e.Limits.MaxRecordBytes, e.Limits.MaxOps
	c.Batch.MaxWrites, c.Batch.MaxUnits, c.Batch.MaxBytes, c.Batch.Linger = e.MaxBatchWrites, e.MaxBatchUnits, e.MaxBatchBytes, e.Linger
	c.Concurrency = e.Concurrency
	c.MaxInflightRecords, c.MaxInflightBytes = e.MaxInflightRecords, e.MaxInflightBytes
	c.MaxInflightPerPartition = e.MaxInflightPerPartition
	c.Versions = "producer"
	c.Retry.BackoffBase, c.Retry.BackoffMax, c.Retry.ParkDelay, c.Retry.ParkFor = e.BackoffBase, e.BackoffMax, e.ParkDelay, e.ParkFor
	c.DeadLetters.Policy = string(e.Policy)
	c.Cache.Use = "auto"
	c.Cache.Size = e.CacheSize
	c.DrainTimeout = e.DrainTimeout
	c.Lock.TTL = e.LockTTL
	return c
}

var unknownField = regexp.MustCompile(`field (\S+) not found in type .*`)

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Load reads a config file over the defaults. ${NAME} is replaced by the
// environment variable NAME; an unset one is an error naming the line.
// Unknown fields are errors.
func Load(path string) (Config, error) {
	c := Default()
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	var errs []error
	lines := bytes.Split(raw, []byte("\n"))
	for i, line := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			continue
		}
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			name := string(m[2 : len(m)-1])
			v, ok := os.LookupEnv(name)
			if !ok {
				errs = append(errs, fmt.Errorf("%s:%d: ${%s} is not set in the environment", path, i+1, name))
			}
			return []byte(v)
		})
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = unknownField.ReplaceAllString(msg, "unknown field $1")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		return c, fmt.Errorf("%s: %s", path, msg)
	}
	return c, nil
}

// Validate reports every invalid field, named by its path in the file.
func (c Config) Validate() error {
	var errs []error
	add := func(field, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(msg, args...)))
	}
	if c.DataDir == "" {
		add("data_dir", "must not be empty")
	}
	if c.Listen != "" && !strings.Contains(c.Listen, ":") {
		add("listen", "%q is not host:port", c.Listen)
	}
	if _, ok := Match(Sources, c.Source); c.Source != "" && !ok {
		add("source", "%q: want %s (or empty for the embedded stream)", Redact(c.Source), Forms(Sources))
	}
	if _, ok := Match(Sinks, c.Sink); c.Sink != "" && !ok {
		add("sink", "%q: unknown scheme (supported: %s)", Redact(c.Sink), Forms(Sinks))
	}
	switch c.Versions {
	case "producer", "derive":
		// The embedded stream derives versions, the embedded store guards them.
		if s, ok := Match(Sources, c.Source); c.Versions == "derive" && ok && !s.Versions {
			add("versions", "derive with source %s: its records derive no version yet (docs/DESIGN.md, \"Versions\"); use producer", Redact(c.Source))
		}
		if s, ok := Match(Sinks, c.Sink); c.Versions == "derive" && ok && !s.Versions {
			add("versions", "derive with sink %s: it does not guard versions yet, so derived versions would change nothing (docs/DESIGN.md, \"Versions\"); use producer", Redact(c.Sink))
		}
	default:
		add("versions", "%q: producer (a write's own version, if any) or derive (the source's for a write without one)", c.Versions)
	}
	if c.HTTP.MaxBodyBytes <= 0 {
		add("http.max_body_bytes", "must be positive")
	}
	if c.Stream.MaxBytes <= 0 {
		add("stream.max_bytes", "must be positive (default 1 GiB)")
	}
	if c.HTTP.MaxInvalid < 0 {
		add("http.max_invalid", "must not be negative (0: a request with any invalid record is refused whole)")
	}
	if c.HTTP.ReadTimeout <= 0 {
		add("http.read_timeout", "must be positive (default 1m)")
	}
	if c.HTTP.MaxConnections <= 0 {
		add("http.max_connections", "must be positive (default 1024)")
	}
	if _, ok := Match(Redis, c.Lock.Use); c.Lock.Use != "" && !ok {
		add("lock.use", "%q: %s, or empty (no locker)", Redact(c.Lock.Use), Forms(Redis))
	}
	// The engine's settings have one rule set: the engine's own.
	if err := c.Engine().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Cache.Size == 0 || c.Cache.Size < -1 {
		add("cache.size", "must be positive, or -1 to disable the write cache (got %d)", c.Cache.Size)
	}
	switch {
	case c.Cache.Use == "memory" && c.sourceMoves():
		// A fact cached here can be made stale by another instance of
		// the group, and a write it eliminates is lost (docs/cache.md).
		add("cache.use", "memory with source %s: its partitions move between the instances that share it, and a fact one instance caches can be changed by another, so the in-process cache alone would drop needed writes; use %s (shared by the instances), off, or auto (off here)", Redact(c.Source), Forms(Redis))
	case c.Cache.Use == "auto" || c.Cache.Use == "memory" || c.Cache.Use == "off":
	case isRedis(c.Cache.Use):
		if c.Cache.Size < 0 {
			add("cache.size", "-1 (off) with cache.use %s: the shared cache needs the in-process one in front of it", Redact(c.Cache.Use))
		}
	default:
		add("cache.use", "%q: auto, memory, %s, or off", Redact(c.Cache.Use), Forms(Redis))
	}
	return errors.Join(errs...)
}

func isRedis(u string) bool {
	_, ok := Match(Redis, u)
	return ok
}

// sourceMoves reports whether the source's partitions move between the
// instances that share it (Scheme.Moves).
func (c Config) sourceMoves() bool {
	s, ok := Match(Sources, c.Source)
	return ok && s.Moves
}

// CacheUse is the write cache in use: cache.use, with auto resolved to
// memory, or to off for a source whose partitions move between instances.
func (c Config) CacheUse() string {
	if c.Cache.Use != "auto" {
		return c.Cache.Use
	}
	if c.sourceMoves() {
		return "off"
	}
	return "memory"
}

// SharedCache reports whether the write cache is shared through Redis.
func (c Config) SharedCache() bool { return isRedis(c.Cache.Use) }

// Redact hides the password of a URL, for messages and printed settings.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// Engine returns the engine settings (without the shared cache, which needs
// a connection: see cmd/graft).
func (c Config) Engine() engine.Config {
	size := c.Cache.Size
	if c.CacheUse() == "off" {
		size = -1
	}
	return engine.Config{
		Limits:             graft.Limits{MaxRecordBytes: c.Limits.MaxRecordBytes, MaxOps: c.Limits.MaxOps},
		MaxRecordAge:       c.Limits.MaxRecordAge,
		LockTTL:            c.Lock.TTL,
		MaxInflightRecords: c.MaxInflightRecords, MaxInflightBytes: c.MaxInflightBytes,
		MaxInflightPerPartition: c.MaxInflightPerPartition,
		DeriveVersions:          c.Versions == "derive",
		MaxBatchWrites:          c.Batch.MaxWrites, MaxBatchUnits: c.Batch.MaxUnits, MaxBatchBytes: c.Batch.MaxBytes,
		Concurrency: c.Concurrency, Linger: c.Batch.Linger,
		BackoffBase: c.Retry.BackoffBase, BackoffMax: c.Retry.BackoffMax,
		ParkDelay: c.Retry.ParkDelay, ParkFor: c.Retry.ParkFor,
		Policy: engine.Policy(c.DeadLetters.Policy), DrainTimeout: c.DrainTimeout, CacheSize: size,
	}
}

// YAML renders the config (secrets masked).
func (c Config) YAML() []byte {
	if c.Auth.Token != "" {
		c.Auth.Token = "********"
	}
	c.Kafka = c.Kafka.Masked()
	c.Cache.Use = Redact(c.Cache.Use)
	c.Lock.Use = Redact(c.Lock.Use)
	b, _ := yaml.Marshal(c)
	return b
}

// SinkURL is the sink's URL: Sink, or the embedded store in the data
// directory.
func (c Config) SinkURL() string {
	if c.Sink != "" {
		return c.Sink
	}
	return "sqlite:" + filepath.Join(c.DataDir, "graph.db")
}
