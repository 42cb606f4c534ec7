package app

import (
	"errors"
	"fmt"
	"strings"

	rediscache "github.com/graftdb/graft/cache/redis"
	"github.com/graftdb/graft/config"
	redislock "github.com/graftdb/graft/lock/redis"
	"github.com/graftdb/graft/mapping"
	"github.com/graftdb/graft/sink/gremlin"
	"github.com/graftdb/graft/sink/sparql"
	"github.com/graftdb/graft/sink/sqlite"
	"github.com/graftdb/graft/source/kafka"
	"github.com/graftdb/graft/source/kinesis"
)

// Check reports everything wrong with c that can be known without
// connecting: the file's rules (config.Validate), then each URL read by the
// package that will use it (a kafka:// source without group=, a sink URL's
// parameters, a redis:// URL's), and the mapping rules. graft config
// validate runs it, so that what it calls ok, graft run accepts.
func Check(c config.Config) error {
	if err := c.Validate(); err != nil {
		return err // the URLs' schemes may be what is wrong
	}
	var errs []error
	add := func(field string, err error) {
		switch {
		case err == nil:
		case strings.HasPrefix(err.Error(), strings.Split(field, ".")[0]+" "):
			errs = append(errs, err) // it names the setting already
		default:
			errs = append(errs, fmt.Errorf("%s: %v", field, err))
		}
	}
	switch {
	case strings.HasPrefix(c.Source, "kafka://"):
		kc, err := kafka.ParseURL(c.Source)
		add("source", err)
		if err == nil && kc.DeadLetters != "" && c.DeadLetters.Policy == "quarantine" {
			add("dead_letters.policy", errors.New("quarantine needs the dead-letter file; it cannot be used with a dead-letter topic (dlq=) yet"))
		}
	case strings.HasPrefix(c.Source, "kinesis://"):
		_, err := kinesis.ParseURL(c.Source)
		add("source", err)
	case strings.HasPrefix(c.Source, "nats://"):
		if _, err := natsTarget(c.Source); err != nil {
			add("source", err)
		}
	}
	switch sink := c.SinkURL(); {
	case strings.HasPrefix(sink, "sqlite:"):
		_, err := sqlite.ParseURL(sink)
		add("sink", err)
	case strings.HasPrefix(sink, "sparql+"):
		_, err := sparql.ParseURL(sink)
		add("sink", err)
	case strings.HasPrefix(sink, "gremlin+"):
		_, err := gremlin.ParseURL(sink)
		add("sink", err)
	}
	if c.SharedCache() {
		_, _, err := rediscache.ParseURL(c.Cache.Use)
		add("cache.use", err)
	}
	if c.Lock.Use != "" {
		_, _, err := redislock.ParseURL(c.Lock.Use)
		add("lock.use", err)
	}
	if c.Mapping != "" {
		_, err := mapping.Load(c.Mapping)
		add("mapping", err)
	}
	return errors.Join(errs...)
}
