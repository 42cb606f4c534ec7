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
	adm    *kadm.Client
	group  string
	topics []string // the source's topics (none: a pattern; then the brokers' group view)

	mu      sync.Mutex
	lag     int64
	lagErr  error
	lagTime time.Time
}

// lagCache is how long a lag figure is reused: /v1/status may be polled
// often, and each lag costs the brokers three requests.
const lagCache = time.Second

// NewGroup connects to the brokers.
// topics are the source's topics; with a pattern (regex=true) pass none.
func NewGroup(brokers []string, group string, topics []string, sec Security, extra ...kgo.Opt) (*Group, error) {
	so, err := sec.opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, so...), extra...)...)
	if err != nil {
		return nil, err
	}
	return &Group{adm: kadm.NewClient(cl), group: group, topics: topics}, nil
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

// fetchLag counts, for every partition of the topics, the records past
// the group's committed offset (or past the partition's start when the
// group committed none): whatever the group's state. The brokers' own view
// (kadm.Lag) covers only what the group describes, which is nothing during
// its first rebalance: lag 0 while every record was unread.
func (g *Group) fetchLag(ctx context.Context) (int64, error) {
	if len(g.topics) == 0 {
		return g.describedLag(ctx)
	}
	ends, err := g.adm.ListEndOffsets(ctx, g.topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("group %s lag: end offsets: %w", g.group, err)
	}
	starts, err := g.adm.ListStartOffsets(ctx, g.topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("group %s lag: start offsets: %w", g.group, err)
	}
	committed, err := g.adm.FetchOffsets(ctx, g.group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("group %s lag: committed offsets: %w", g.group, err)
	}
	var lag int64
	ends.Each(func(end kadm.ListedOffset) {
		from := int64(0)
		if st, ok := starts.Lookup(end.Topic, end.Partition); ok {
			from = st.Offset
		}
		if c, ok := committed.Lookup(end.Topic, end.Partition); ok && c.At > from {
			from = c.At
		}
		if end.Offset > from {
			lag += end.Offset - from
		}
	})
	return lag, nil
}

// describedLag is the brokers' view of the group's lag (kadm.Lag), for a
// source that names its topics by a pattern.
func (g *Group) describedLag(ctx context.Context) (int64, error) {
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
