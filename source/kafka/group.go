package kafka

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
)

// Group reads a consumer group's state from the brokers: its lag, and its
// committed offsets. It has its own client, so that asking never disturbs
// the consumer.
type Group struct {
	adm   *kadm.Client
	group string

	mu      sync.Mutex
	lag     int64
	lagErr  error
	lagTime time.Time
}

// lagCache is how long a lag figure is reused: /v1/status may be polled
// often, and each lag costs the brokers three requests.
const lagCache = time.Second

// NewGroup connects to the brokers.
func NewGroup(brokers []string, group string, sec Security, extra ...kgo.Opt) (*Group, error) {
	so, err := sec.opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, so...), extra...)...)
	if err != nil {
		return nil, err
	}
	return &Group{adm: kadm.NewClient(cl), group: group}, nil
}

// Lag is the group's lag: the records of its topics' partitions past their
// committed offsets, summed over every member (not only this one).
func (g *Group) Lag(ctx context.Context) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.lagTime) < lagCache {
		return g.lag, g.lagErr
	}
	g.lag, g.lagErr = g.fetchLag(ctx)
	g.lagTime = time.Now()
	return g.lag, g.lagErr
}

func (g *Group) fetchLag(ctx context.Context) (int64, error) {
	lags, err := g.adm.Lag(ctx, g.group)
	if err != nil {
		return 0, fmt.Errorf("group %s lag: %w", g.group, err)
	}
	l, ok := lags[g.group]
	if !ok {
		return 0, fmt.Errorf("group %s lag: no answer", g.group)
	}
	if err := l.Error(); err != nil {
		return 0, fmt.Errorf("group %s lag: %w", g.group, err)
	}
	return l.Lag.Total(), nil
}

// Committed reports whether the group has committed past every position
// (some member's engine has committed or dead-lettered it).
func (g *Group) Committed(ctx context.Context, positions []graft.Position) (bool, error) {
	offs, err := g.adm.FetchOffsets(ctx, g.group)
	if err != nil {
		return false, fmt.Errorf("group %s offsets: %w", g.group, err)
	}
	for _, pos := range positions {
		topic, p, ok := splitPartition(pos.Partition)
		if !ok {
			return false, fmt.Errorf("kafka: bad position %q", pos.Partition)
		}
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At <= pos.Offset {
			return false, nil
		}
	}
	return true, nil
}

// Close closes the client.
func (g *Group) Close() { g.adm.Close() }
