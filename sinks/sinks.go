// Package sinks opens a sink by URL: every sink Graft has is wired here,
// explicitly, for the commands and the Lambda handler.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/sink/gremlin"
	"github.com/graftdb/graft/sink/postgres"
	"github.com/graftdb/graft/sink/sparql"
	"github.com/graftdb/graft/sink/sqlite"
)

// URLError is a sink URL that cannot be used: a usage error.
type URLError struct{ msg string }

func (e *URLError) Error() string { return e.msg }

func badURL(format string, args ...any) error { return &URLError{fmt.Sprintf(format, args...)} }

// Store is an open sink and the reader of its graph.
type Store interface {
	graft.Sink
	graft.Reader
}

// Open opens the sink a URL names and checks that it is reachable. Every
// sink is wired here, explicitly.
// With mustExist, a store that does not exist yet is an error rather than
// created empty (for commands that only read).
func Open(ctx context.Context, url string, mustExist bool) (Store, error) {
	scheme, _, _ := strings.Cut(url, ":")
	switch scheme {
	case "sqlite":
		path, err := sqlite.ParseURL(url)
		if err != nil {
			return nil, badURL("--sink: %v", err)
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
			return nil, badURL("--sink: %v", err)
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
			return nil, badURL("--sink: %v", err)
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
	return nil, badURL("--sink %q: unknown scheme %q (supported: sqlite:PATH, postgres://USER@HOST:PORT/DB?sslmode=…, gremlin+wss://HOST:PORT/gremlin, sparql+http://HOST:PORT/sparql)", url, scheme)
}
