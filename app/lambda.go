package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/source/kafka"
	"github.com/graftdb/graft/source/lambda"
)

// Lambda assembles the Lambda handler: the sink, the write cache and the
// locker c names, and the engine settings, which every invocation uses.
// Dead letters go to the Kafka topic dlq names (kafka://BROKERS/TOPIC,
// authenticated as c.Kafka says) and then count as done; with none, a dead
// letter is a failed record that Lambda retries.
func Lambda(ctx context.Context, c config.Config, dlq string, log *slog.Logger) (*lambda.Handler, error) {
	if c.Sink == "" {
		return nil, configErr("sink: not set (GRAFT_SINK): the Lambda handler has no embedded store")
	}
	// Invocations for other shards or partitions run at the same time, in
	// other execution environments: an element one of them cached can be
	// changed by another (docs/cache.md).
	switch c.Cache.Use {
	case "memory":
		return nil, configErr("cache.use (GRAFT_CACHE_USE): memory: concurrent invocations for other shards or partitions can change an element this one cached, and a write the stale fact eliminates would be lost; use redis://… (shared by every invocation) or off")
	case "auto":
		c.Cache.Use = "off"
	}
	if c.Versions == "derive" {
		return nil, configErr("versions (GRAFT_VERSIONS): derive: Lambda events derive no versions yet; use producer (docs/DESIGN.md, \"Versions\")")
	}
	cfg, err := EngineConfig(c, log)
	if err != nil {
		return nil, err
	}
	// The handler lives as long as the execution environment: what is
	// opened here is closed when the environment ends.
	if _, err := connectRedis(ctx, c, &cfg, log); err != nil {
		return nil, err
	}
	sink, err := OpenSink(ctx, c.Sink, false)
	if err != nil {
		return nil, err
	}
	h := &lambda.Handler{Sink: sink, Config: cfg}
	if dlq != "" {
		t, err := kafka.ParseTarget(dlq)
		if err != nil {
			return nil, configErr("dead-letter topic %q: %v", dlq, err)
		}
		if h.Letters, err = kafka.NewDeadLetterTopic(t, c.Kafka); err != nil {
			return nil, fmt.Errorf("dead-letter topic %s: %w", dlq, err)
		}
	}
	return h, nil
}
