package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/config"
	"github.com/graftdb/graft/sink/gremlin"
	"github.com/graftdb/graft/sink/postgres"
	"github.com/graftdb/graft/sink/sparql"
	"github.com/graftdb/graft/sink/sqlite"
)

// Store is an open sink and the reader of its graph.
type Store interface {
	graft.Sink
	graft.Reader
}

// OpenSink opens the sink a URL names (config.Sinks) and checks that it is
// reachable. Every sink is wired here, explicitly. With mustExist, a store
// that does not exist yet is an error rather than created empty (for
// commands that only read).
func OpenSink(ctx context.Context, url string, mustExist bool) (Store, error) {
	scheme, _, _ := strings.Cut(url, ":")
	switch scheme {
	case "sqlite":
		path, err := sqlite.ParseURL(url)
		if err != nil {
			return nil, configErr("--sink: %v", err)
		}
		if _, err := os.Stat(path); mustExist && errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no graph at %s: nothing has been ingested into it yet", url)
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("cannot open sink %s: %w", url, err)
		}
		if err := s.Ping(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot reach sink %s: %w", url, err)
		}
		return s, nil
	case "postgres", "postgresql":
		s, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("cannot open sink: %w", err)
		}
		if err := s.Ping(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot reach sink %w", err)
		}
		return s, nil
	case "sparql+http", "sparql+https":
		cfg, err := sparql.ParseURL(url)
		if err != nil {
			return nil, configErr("--sink: %v", err)
		}
		s, err := sparql.Open(cfg)
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := s.Ping(pctx); err != nil {
			return nil, fmt.Errorf("cannot reach sink %s: %w", s.Endpoint(), err)
		}
		return s, nil
	case "gremlin+ws", "gremlin+wss":
		cfg, err := gremlin.ParseURL(url)
		if err != nil {
			return nil, configErr("--sink: %v", err)
		}
		s, err := gremlin.Open(cfg)
		if err != nil {
			return nil, fmt.Errorf("cannot open sink: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := s.Ping(pctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot reach sink %s: %w", cfg.URL, err)
		}
		return s, nil
	}
	return nil, configErr("--sink %q: unknown scheme %q (supported: %s)", config.Redact(url), scheme, config.Forms(config.Sinks))
}
