// Package app is the one assembly of Graft: it turns a validated
// configuration (package config) into a running pipeline — sink, write
// cache, locker, dead letters, engine, and for a service the source and the
// HTTP API. The commands (cmd/graft), the Lambda handler (cmd/graft-lambda)
// and graft bench use it; nothing else wires plugins together.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/graftdb/graft"
	rediscache "github.com/graftdb/graft/cache/redis"
	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/deadletter"
	"github.com/graftdb/graft/engine"
	redislock "github.com/graftdb/graft/lock/redis"
	"github.com/graftdb/graft/mapping"
)

// EngineConfig validates c and returns the engine's settings, with the
// mapping rules loaded when c names a file. The shared cache and the locker,
// which need connections, are added by OpenPipeline.
func EngineConfig(c config.Config, log *slog.Logger) (engine.Config, error) {
	if err := c.Validate(); err != nil {
		return engine.Config{}, configErr("invalid configuration:\n%v", err)
	}
	cfg := c.Engine()
	cfg.Logger = log
	if c.Mapping != "" {
		m, err := mapping.Load(c.Mapping)
		if err != nil {
			return engine.Config{}, configErr("--mapping: %v", err)
		}
		cfg.Decode = m.Decoder(cfg.Limits)
	}
	return cfg, nil
}

// Pipeline is an engine wired to a sink, its dead letters, and the write
// cache and locker the configuration names.
type Pipeline struct {
	Engine *engine.Engine
	Sink   Store
	// DLQ is the data directory's dead-letter file; Letters is where the
	// engine puts dead letters: DLQ, or the target OpenPipeline was given.
	DLQ     *deadletter.File
	Letters graft.DeadLetters

	closers []func()
}

// OpenPipeline opens the sink, the data directory (locked for this
// process), the write cache, the locker and the engine. Dead letters go to
// letters when it is not nil (a Kafka topic), else to
// <data-dir>/deadletters.ndjson.
func OpenPipeline(ctx context.Context, c config.Config, log *slog.Logger, letters graft.DeadLetters) (_ *Pipeline, err error) {
	cfg, err := EngineConfig(c, log)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	closeRedis, err := connectRedis(ctx, c, &cfg, log)
	p.closers = append(p.closers, closeRedis)
	if err != nil {
		return nil, err
	}
	if p.Sink, err = OpenSink(ctx, c.SinkURL(), false); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { p.Sink.Close() })
	unlock, err := LockDataDir(c.DataDir)
	if err != nil {
		return nil, err
	}
	p.closers = append(p.closers, unlock)
	dlqPath := filepath.Join(c.DataDir, deadletter.FileName)
	if p.DLQ, err = deadletter.Open(dlqPath); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { p.DLQ.Close() })
	if p.DLQ.Repaired != "" {
		log.Warn("dead letters: " + p.DLQ.Repaired)
	}
	p.Letters = p.DLQ
	if letters != nil {
		if cfg.Policy == engine.Quarantine {
			return nil, configErr("dead_letters.policy quarantine needs the dead-letter file (the keys quarantined before a restart are read back from it); it cannot be used with a dead-letter topic yet")
		}
		p.Letters = letters
	}
	if p.Engine, err = engine.New(p.Sink, p.Letters, cfg); err != nil {
		return nil, configErr("%v", err)
	}
	if cfg.Policy == engine.Quarantine {
		keys, err := deadletter.Keys(dlqPath)
		if errors.As(err, new(*deadletter.CorruptError)) {
			log.Warn("dead letters: the keys of unreadable letters cannot be quarantined", "err", err)
		} else if err != nil {
			return nil, err
		}
		p.Engine.Quarantine(keys...)
	}
	return p, nil
}

// connectRedis gives cfg the shared write cache and the locker c names. The
// returned function closes what was opened, also after an error.
func connectRedis(ctx context.Context, c config.Config, cfg *engine.Config, log *slog.Logger) (func(), error) {
	var closers []func()
	closeAll := func() {
		for _, f := range closers {
			f()
		}
	}
	if c.SharedCache() {
		shared, err := rediscache.Dial(c.Cache.Use)
		if err != nil {
			return closeAll, configErr("--cache: %v", err)
		}
		closers = append(closers, func() { shared.Close() })
		warnIfDown(ctx, shared.Ping, log, "write cache: Redis does not answer; the cache is bypassed until it does", c.Cache.Use)
		cfg.SharedCache = shared
	}
	if c.Lock.Use != "" {
		lock, err := redislock.Dial(c.Lock.Use)
		if err != nil {
			return closeAll, configErr("--lock: %v", err)
		}
		closers = append(closers, func() { lock.Close() })
		warnIfDown(ctx, lock.Ping, log, "locker: Redis does not answer; writing waits until it does", c.Lock.Use)
		cfg.Locker = lock
	}
	return closeAll, nil
}

// Close closes what OpenPipeline opened, in reverse order.
func (p *Pipeline) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// warnIfDown logs once when Redis does not answer at start: graft runs on
// and the engine retries (the cache bypassed, the locker pausing writes).
func warnIfDown(ctx context.Context, ping func(context.Context) error, log *slog.Logger, msg, url string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := ping(ctx); err != nil {
		log.Warn(msg, "redis", config.Redact(url), "err", fmt.Sprint(err))
	}
}
