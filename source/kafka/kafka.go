// Package kafka connects Graft to Kafka: a Source reading topics through a
// franz-go consumer group (cooperative-sticky by default), a Producer (graft
// produce, the HTTP API), a dead-letter topic, and the group's lag.
//
// Offsets: the engine acknowledges, per partition, the position below which
// every record is committed or dead-lettered; the source commits that
// position + 1 (every second, and at once when a partition is revoked).
// Rebalances: polling blocks rebalances until the records polled have been
// handed to the engine; when partitions are revoked, the source asks the
// engine to finish every record of them it holds (Drain), commits exactly
// that, and only then lets the partitions go — a partition is never
// processed by two members at once.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft"
)

// Config is what a kafka:// URL says.
type Config struct {
	Brokers []string
	Topics  []string // names, or one regular expression when Regex
	Regex   bool
	Group   string
	Start   string // earliest (default), latest, or an RFC 3339 time: where a group with no offset starts
	// InstanceID makes the member static: closing it does not leave the
	// group (its partitions wait for the session timeout). For tests that
	// kill members.
	InstanceID     string
	SessionTimeout time.Duration
	Balancer       string // cooperative-sticky (default), co-partitioned
	// DeadLetters is where dead letters go (dlq=): a kafka://BROKERS/TOPIC
	// URL, or a topic name on the source's brokers; empty: the data
	// directory's file.
	DeadLetters string
	// Produce is the topic the HTTP API produces to (produce=); empty: the
	// source's topic when it names exactly one.
	Produce string
	// Security applies to every client (the kafka: section of graft.yaml).
	Security Security
}

// params are the query parameters of a source URL.
var params = map[string]bool{"group": true, "start": true, "balancer": true, "dlq": true, "produce": true}

// ParseURL reads kafka://broker1:9092,broker2:9092/TOPICS?group=NAME&start=….
// TOPICS is a comma-separated list, or a regular expression (graph\.write\..*).
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "kafka" {
		return Config{}, fmt.Errorf("source %q: want kafka://BROKER[,BROKER]/TOPICS?group=NAME", raw)
	}
	q := u.Query()
	for k := range q {
		if !params[k] {
			return Config{}, fmt.Errorf("source %q: unknown parameter %q (group, start, balancer, dlq, produce)", raw, k)
		}
	}
	c := Config{Brokers: strings.Split(u.Host, ","), Group: q.Get("group"), Start: q.Get("start"), Balancer: q.Get("balancer"),
		DeadLetters: q.Get("dlq"), Produce: q.Get("produce")}
	topics := strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || topics == "" || c.Group == "" {
		return Config{}, fmt.Errorf("source %q: brokers, topics and ?group= are required (kafka://BROKER[,BROKER]/TOPICS?group=NAME)", raw)
	}
	if strings.ContainsAny(topics, `*+?^$()[]{}|\`) {
		if _, err := regexp.Compile(topics); err != nil {
			return Config{}, fmt.Errorf("source %q: topics regex: %v", raw, err)
		}
		c.Topics, c.Regex = []string{topics}, true
	} else {
		c.Topics = strings.Split(topics, ",")
	}
	switch c.Balancer {
	case "", "cooperative-sticky", "co-partitioned":
	default:
		return Config{}, fmt.Errorf("source %q: balancer=%q: cooperative-sticky or co-partitioned", raw, c.Balancer)
	}
	if _, err := c.startOffset(); err != nil {
		return Config{}, fmt.Errorf("source %q: %v", raw, err)
	}
	if c.DeadLetters != "" {
		if _, err := c.DeadLetterTarget(); err != nil {
			return Config{}, fmt.Errorf("source %q: dlq: %v", raw, err)
		}
	}
	if c.Produce != "" && strings.ContainsAny(c.Produce, "/,") {
		return Config{}, fmt.Errorf("source %q: produce=%q: one topic name", raw, c.Produce)
	}
	return c, nil
}

var (
	_ graft.Source     = (*Source)(nil)
	_ graft.Rebalancer = (*Source)(nil)
	_ graft.Abandoner  = (*Source)(nil)
)

// DeadLetterTarget is where dlq= points: a topic on the source's brokers, or
// a kafka:// URL of its own.
func (c Config) DeadLetterTarget() (Target, error) {
	if strings.HasPrefix(c.DeadLetters, "kafka://") {
		return ParseTarget(c.DeadLetters)
	}
	if c.DeadLetters == "" || strings.ContainsAny(c.DeadLetters, "/,:") {
		return Target{}, fmt.Errorf("%q: a topic name or kafka://BROKER[,BROKER]/TOPIC", c.DeadLetters)
	}
	return Target{Brokers: c.Brokers, Topic: c.DeadLetters}, nil
}

// ProduceTarget is the topic the HTTP API writes to, and whether there is
// one: produce=, or the source's only topic.
func (c Config) ProduceTarget() (Target, bool) {
	switch {
	case c.Produce != "":
		return Target{Brokers: c.Brokers, Topic: c.Produce}, true
	case !c.Regex && len(c.Topics) == 1:
		return Target{Brokers: c.Brokers, Topic: c.Topics[0]}, true
	}
	return Target{}, false
}

// startOffset is where a group with no committed offset starts.
func (c Config) startOffset() (kgo.Offset, error) {
	switch c.Start {
	case "", "earliest", "committed":
		return kgo.NewOffset().AtStart(), nil
	case "latest":
		return kgo.NewOffset().AtEnd(), nil
	}
	t, err := time.Parse(time.RFC3339, c.Start)
	if err != nil {
		return kgo.Offset{}, fmt.Errorf("start=%q: committed (default: the group's offsets, else the earliest), earliest, latest or an RFC 3339 time", c.Start)
	}
	return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
}

// Source implements graft.Source, graft.Rebalancer and graft.Abandoner.
type Source struct {
	cfg Config
	cl  *kgo.Client
	log *slog.Logger

	mu        sync.Mutex
	toCommit  map[string]map[int32]kgo.EpochOffset // offsets acknowledged, not yet committed
	owned     map[string]bool                      // partitions assigned to this member
	killed    bool                                 // Kill: callbacks do nothing, as after a crash
	drain     func(context.Context, []string) error
	abandon   func(partition string, through int64)
	allow     bool // rebalances were blocked by the last poll
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var (
	_ graft.Source     = (*Source)(nil)
	_ graft.Rebalancer = (*Source)(nil)
)

// New joins the group.
func New(cfg Config, log *slog.Logger, extra ...kgo.Opt) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, log: log, toCommit: map[string]map[int32]kgo.EpochOffset{}, owned: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	start, err := cfg.startOffset()
	if err != nil {
		return nil, err
	}
	sec, err := cfg.Security.opts()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// A fetch waits at most 100 ms for data (franz-go's default is 5 s):
		// a partition resumed after a pause (max_inflight_per_partition)
		// otherwise waited for the fetch in flight without it, and the
		// consume path at 12 partitions fell to 0.15x (docs/benchmarks.md).
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.ConsumeResetOffset(start),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	}
	if cfg.Regex {
		opts = append(opts, kgo.ConsumeRegex())
	}
	opts = append(opts, kgo.ConsumeTopics(cfg.Topics...))
	if cfg.Balancer == "co-partitioned" {
		// The range assignor splits each topic's partitions into the same
		// contiguous ranges over the same sorted members: partition n of
		// every topic with the same partition count goes to the same
		// member, so a key that appears in several topics stays on one
		// instance.
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	} else {
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout), kgo.HeartbeatInterval(cfg.SessionTimeout/5))
	}
	opts = append(opts, sec...)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: %w", strings.Join(cfg.Brokers, ","), err)
	}
	s.cl = cl
	go s.commitLoop()
	return s, nil
}

// Ping checks that a broker answers (with TLS and SASL, when configured).
func (s *Source) Ping(ctx context.Context) error { return s.cfg.Security.explain(s.cl.Ping(ctx)) }

// SetDrain implements graft.Rebalancer.
func (s *Source) SetDrain(drain func(context.Context, []string) error) {
	s.mu.Lock()
	s.drain = drain
	s.mu.Unlock()
}

// SetAbandon implements graft.Abandoner: a lost partition's records are
// dropped, not applied (lost), until it is assigned again (assigned).
func (s *Source) SetAbandon(abandon func(partition string, through int64)) {
	s.mu.Lock()
	s.abandon = abandon
	s.mu.Unlock()
}

// Partition names a topic partition as positions do: "topic/3".
func Partition(topic string, p int32) string { return topic + "/" + strconv.Itoa(int(p)) }

func splitPartition(name string) (string, int32, bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", 0, false
	}
	p, err := strconv.Atoi(name[i+1:])
	return name[:i], int32(p), err == nil
}

// Fetch implements graft.Source. The records of the last poll have been
// handed to the engine when Fetch is called again: only then may the group
// rebalance.
func (s *Source) Fetch(ctx context.Context) ([]graft.Record, error) {
	for {
		if s.allow {
			s.cl.AllowRebalance()
			s.allow = false
		}
		fs := s.cl.PollRecords(ctx, 4096)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fs.IsClientClosed() {
			return nil, graft.ErrClosed
		}
		var errs []error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", Partition(topic, p), err))
			}
		})
		for _, err := range errs {
			s.log.Warn("kafka fetch error", "err", err)
		}
		s.allow = true
		if fs.NumRecords() == 0 {
			// Nothing handed out (errors only, such as a group session
			// that must be joined again): a poll blocks rebalances all the
			// same, so allow them before polling again. Skipping this left
			// a fenced member's rejoin, and with it the whole group and
			// every member's commits, waiting forever.
			continue
		}
		recs := make([]graft.Record, 0, fs.NumRecords())
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, graft.Record{Value: r.Value, Key: string(r.Key), Arrived: r.Timestamp,
				Pos: graft.Position{Partition: Partition(r.Topic, r.Partition), Offset: r.Offset}, Version: graft.VersionOf(r.Timestamp.UnixMilli(), r.Offset)})
		})
		return recs, nil
	}
}

// Ack implements graft.Source: remember offset+1 for the next commit.
func (s *Source) Ack(_ context.Context, pos graft.Position) error {
	topic, p, ok := splitPartition(pos.Partition)
	if !ok {
		return fmt.Errorf("kafka: bad position %q", pos.Partition)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.owned[pos.Partition] {
		return nil // revoked: its new owner commits it
	}
	m := s.toCommit[topic]
	if m == nil {
		m = map[int32]kgo.EpochOffset{}
		s.toCommit[topic] = m
	}
	if cur, ok := m[p]; !ok || cur.Offset < pos.Offset+1 {
		m[p] = kgo.EpochOffset{Epoch: -1, Offset: pos.Offset + 1}
	}
	return nil
}

// take removes and returns the offsets to commit (only the given partitions
// when parts is not nil).
func (s *Source) take(parts map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	s.mu.Lock()
	defer s.mu.Unlock()
	if parts == nil {
		out := s.toCommit
		s.toCommit = map[string]map[int32]kgo.EpochOffset{}
		return out
	}
	out := map[string]map[int32]kgo.EpochOffset{}
	for topic, ps := range parts {
		for _, p := range ps {
			if eo, ok := s.toCommit[topic][p]; ok {
				if out[topic] == nil {
					out[topic] = map[int32]kgo.EpochOffset{}
				}
				out[topic][p] = eo
				delete(s.toCommit[topic], p)
			}
		}
	}
	return out
}

func (s *Source) commit(ctx context.Context, offsets map[string]map[int32]kgo.EpochOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsgReq, resp *kmsgResp, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerrOf(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("commit %s: %w", Partition(t.Topic, p.Partition), e)
				}
			}
		}
	})
	return cerr
}

func (s *Source) commitLoop() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.commit(context.Background(), s.take(nil)); err != nil {
			s.log.Warn("kafka commit failed; the offsets will be committed later or replayed", "err", err)
		}
	}
}

func names(parts map[string][]int32) []string {
	var out []string
	for topic, ps := range parts {
		for _, p := range ps {
			out = append(out, Partition(topic, p))
		}
	}
	return out
}

// assigned: the partitions are this member's. One lost before is read
// again from its last commit: its abandonment is lifted, so that what is
// read from now on is applied (the engine still drops what it held from
// before the loss). Rebalances wait for Fetch (BlockRebalanceOnPoll), so
// every record delivered before is already with the engine.
func (s *Source) assigned(_ context.Context, cl *kgo.Client, parts map[string][]int32) {
	cl.ResumeFetchPartitions(parts) // a pause from an earlier ownership does not carry over
	s.mu.Lock()
	abandon := s.abandon
	for _, n := range names(parts) {
		s.owned[n] = true
	}
	s.mu.Unlock()
	if abandon != nil {
		for _, n := range names(parts) {
			abandon(n, -1)
		}
	}
}

// Pause implements graft.Pauser: the client stops fetching the partitions
// this member owns among them (franz-go drops what it buffered of them and
// fetches it again on resume).
func (s *Source) Pause(partitions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if parts := s.split(partitions, true); len(parts) > 0 {
		s.cl.PauseFetchPartitions(parts)
	}
}

// Resume implements graft.Pauser.
func (s *Source) Resume(partitions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if parts := s.split(partitions, false); len(parts) > 0 {
		s.cl.ResumeFetchPartitions(parts)
	}
}

// split turns partition names into topics and partitions, only those this
// member owns when owned is set; s.mu held.
func (s *Source) split(partitions []string, owned bool) map[string][]int32 {
	parts := map[string][]int32{}
	for _, n := range partitions {
		if topic, p, ok := splitPartition(n); ok && (!owned || s.owned[n]) {
			parts[topic] = append(parts[topic], p)
		}
	}
	return parts
}

// disown forgets partitions and whatever was acknowledged of them and not
// committed: from now on only their new owner commits them, and a pause of
// them is lifted (it would outlive the ownership in the client).
func (s *Source) disown(parts map[string][]int32) {
	s.cl.ResumeFetchPartitions(parts)
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(s.owned, Partition(topic, p))
			delete(s.toCommit[topic], p)
		}
	}
}

// revoked finishes the revoked partitions' records, commits them, and lets
// the partitions go.
func (s *Source) revoked(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	s.release(ctx, parts)
}

// lost: the member was fenced (its session expired: it stalled, or the
// group removed it). Another member owns the partitions already and reads
// them from their last commit: what the engine holds of them is dropped,
// not applied (it would land after the new owner's writes of the same
// keys; only a batch already at the sink may), and nothing is committed.
func (s *Source) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	s.mu.Lock()
	abandon, killed := s.abandon, s.killed
	s.mu.Unlock()
	if killed {
		return
	}
	s.log.Warn("kafka: partitions lost (this member was fenced); dropping their records not yet applied", "partitions", names(parts))
	if abandon != nil {
		for _, n := range names(parts) {
			abandon(n, math.MaxInt64)
		}
	}
	s.disown(parts)
}

// release drains the partitions' records in the engine, commits them, and
// forgets the partitions. After Kill it does nothing, as a crashed process
// would not.
func (s *Source) release(ctx context.Context, parts map[string][]int32) {
	s.mu.Lock()
	drain, killed := s.drain, s.killed
	s.mu.Unlock()
	if killed {
		return
	}
	if drain != nil {
		if err := drain(ctx, names(parts)); err != nil {
			s.log.Warn("partitions not drained; their uncommitted records will be replayed by their next owner", "err", err)
		}
	}
	if err := s.commit(ctx, s.take(parts)); err != nil {
		s.log.Warn("commit of revoked partitions failed; the new owner replays from the last commit", "err", err)
	}
	s.disown(parts)
}

// Close commits what was acknowledged and leaves the group (a static member
// does not leave).
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.commit(ctx, s.take(nil)); err != nil {
			s.log.Warn("final kafka commit failed", "err", err)
		}
		if !s.closeClient() {
			s.log.Warn("kafka: leaving the group did not finish within 10 s; the group notices at the session timeout")
		}
	})
	return nil
}

// closeClient closes the client, leaving the group, and reports whether
// that finished within 10 s. franz-go's close waits for the group's leave
// without a deadline, and it hung against kfake (once in CI, and in a loop
// of the package's tests); a stop that hangs is worse than a group that
// notices the member gone at its session timeout.
func (s *Source) closeClient() bool {
	closed := make(chan struct{})
	go func() {
		s.cl.CloseAllowingRebalance()
		close(closed)
	}()
	select {
	case <-closed:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// Kill closes the client without committing: a crash, for tests (it waits
// at most 10 s for the client to close, closeClient).
func (s *Source) Kill() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.killed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		s.closeClient()
	})
}

// VersionOrder implements graft.Versioner: a record's version is its
// timestamp (the producer's clock, or the broker's for a topic with
// message.timestamp.type=LogAppendTime) in milliseconds, its offset
// breaking ties (graft.VersionOf).
func (s *Source) VersionOrder() string {
	return "record timestamp in milliseconds, then offset: across partitions as good as the producers' clocks"
}
