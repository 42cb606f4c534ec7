// Package kinesis is a Source reading an Amazon Kinesis data stream, with a
// checkpoint per shard in a DynamoDB table. Records the Kinesis Producer
// Library aggregated are split into their user records (kpl.go).
//
// Shards are discovered (and rediscovered after a reshard); a child shard is
// read only once its parents are finished; each shard's watermark — the
// sequence number below which every record is committed or dead-lettered —
// is checkpointed every second and at close; a restart resumes after the
// checkpoints. Several instances share a stream through leases kept in the
// same table (lease.go): one owner per shard, stealing from dead owners,
// balanced counts, and a handoff that drains a shard before its new owner
// reads it (docs/kinesis.md).
package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/source/kinesis/kpl"
)

// Config is what a kinesis:// URL says.
type Config struct {
	Stream         string
	Region         string
	Endpoint       string // Kinesis endpoint override (emulators, VPC endpoints)
	DynamoEndpoint string
	Table          string // checkpoint table; default graft-<stream>
	Start          string // trim_horizon (default), latest, or RFC 3339: where a shard with no checkpoint starts
	MaxRecords     int    // per GetRecords call (default 1000)
	// Worker names this instance in the lease table (default host-pid-random).
	Worker string
	// LeaseTTL is how long a lease lives without renewal before another
	// instance may take it (default 10 s); leases are renewed every third.
	LeaseTTL time.Duration
	// CheckpointInterval is how often the shards that moved are
	// checkpointed (default 1 s): one DynamoDB write per busy shard each
	// time; a crash replays at most this much.
	CheckpointInterval time.Duration
	// StaticCredentials (emulators): access key and secret, no chain.
	AccessKey, SecretKey string
}

// ParseURL reads kinesis://STREAM?region=…&endpoint=…&dynamodb_endpoint=…&start=…&table=…&worker=…&lease_ttl=…&checkpoint_interval=….
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "kinesis" || u.Host == "" {
		return Config{}, fmt.Errorf("source %q: want kinesis://STREAM?region=REGION", raw)
	}
	c := Config{Stream: u.Host, Start: "trim_horizon", MaxRecords: 1000, LeaseTTL: 10 * time.Second, CheckpointInterval: time.Second}
	q := u.Query()
	for k := range q {
		v := q.Get(k)
		switch k {
		case "region":
			c.Region = v
		case "endpoint":
			c.Endpoint = v
		case "dynamodb_endpoint":
			c.DynamoEndpoint = v
		case "table":
			c.Table = v
		case "start":
			c.Start = v
		case "max_records":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 10000 {
				return Config{}, fmt.Errorf("source %q: max_records=%q: 1 to 10000", raw, v)
			}
			c.MaxRecords = n
		case "worker":
			c.Worker = v
		case "lease_ttl":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				return Config{}, fmt.Errorf("source %q: lease_ttl=%q: a duration of at least 1s (e.g. 10s)", raw, v)
			}
			c.LeaseTTL = d
		case "checkpoint_interval":
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > 10*time.Minute {
				return Config{}, fmt.Errorf("source %q: checkpoint_interval=%q: a duration from 100ms to 10m (e.g. 1s)", raw, v)
			}
			c.CheckpointInterval = d
		default:
			return Config{}, fmt.Errorf("source %q: unknown parameter %q (region, endpoint, dynamodb_endpoint, start, table, max_records, worker, lease_ttl, checkpoint_interval)", raw, k)
		}
	}
	if c.Table == "" {
		c.Table = "graft-" + c.Stream
	}
	switch c.Start {
	case "trim_horizon", "latest":
	default:
		if _, err := time.Parse(time.RFC3339, c.Start); err != nil {
			return Config{}, fmt.Errorf("source %q: start=%q: trim_horizon, latest or an RFC 3339 time", raw, c.Start)
		}
	}
	return c, nil
}

// shardEnd is the checkpoint of a shard read to its end.
const shardEnd = "SHARD_END"

type shard struct {
	id      string
	parents []string
	done    bool // its checkpoint is SHARD_END (here or, from the lease table, elsewhere)

	// The lease: owned by this instance; releasing while it drains for a
	// handoff; renewed at the last successful renewal.
	owned     bool
	releasing bool
	renewed   time.Time

	iter      *string // nil: not open yet, or ended
	ended     bool    // its last record has been fetched
	finishing bool    // ended and all acknowledged: SHARD_END is being written

	next     int64            // the next local offset (grows for the life of the process)
	seqs     map[int64]string // offset → sequence number, until acknowledged
	acked    int64            // highest acknowledged offset
	ackedSeq string           // sequence number of the last acknowledged whole record
	lastOff  int64            // offset of the last record fetched
	behind   int64            // MillisBehindLatest of the last read; -1 before the first
	lastSeq  string           // sequence number of the last whole record fetched (or the checkpoint)
}

// Source implements graft.Source, graft.Rebalancer and graft.Abandoner.
type Source struct {
	cfg Config
	kc  *kinesis.Client
	db  *dynamodb.Client
	log *slog.Logger

	mu        sync.Mutex
	shards    map[string]*shard
	dirty     map[string]string // shard → checkpoint to write
	listed    time.Time
	seen      map[string]observed // the lease table as last scanned
	probed    map[string]probed   // shards held elsewhere: whether they hold records after what was read
	drain     func(context.Context, []string) error
	abandon   func(string, int64)
	metrics   *metrics
	stop      chan struct{}
	done      chan struct{}
	releases  sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ graft.Source     = (*Source)(nil)
	_ graft.Rebalancer = (*Source)(nil)
	_ graft.Abandoner  = (*Source)(nil)
)

// New connects, creates the lease table if missing, lists the shards and
// takes this instance's share of the leases.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Worker == "" {
		cfg.Worker = defaultWorker()
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = time.Second
	}
	ac, err := awsConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, log: log.With("worker", cfg.Worker), shards: map[string]*shard{}, dirty: map[string]string{},
		seen: map[string]observed{}, probed: map[string]probed{}, metrics: newMetrics(), stop: make(chan struct{}), done: make(chan struct{})}
	s.kc = kinesis.NewFromConfig(ac, func(o *kinesis.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	s.db = dynamodb.NewFromConfig(ac, func(o *dynamodb.Options) {
		if cfg.DynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoEndpoint)
		}
	})
	if err := s.ensureTable(ctx); err != nil {
		return nil, err
	}
	if err := s.discover(ctx); err != nil {
		return nil, err
	}
	if err := s.balance(ctx); err != nil {
		return nil, err
	}
	go s.leaseLoop()
	return s, nil
}

var (
	_ graft.Source     = (*Source)(nil)
	_ graft.Rebalancer = (*Source)(nil)
	_ graft.Abandoner  = (*Source)(nil)
)

// Worker is this instance's name in the lease table.
func (s *Source) Worker() string { return s.cfg.Worker }

// SetDrain implements graft.Rebalancer: a handoff drains the shard in the
// engine before its lease moves.
func (s *Source) SetDrain(drain func(context.Context, []string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drain = drain
}

// SetAbandon implements graft.Abandoner: a lost lease drops the shard's
// records the engine has not sent to the sink yet.
func (s *Source) SetAbandon(abandon func(string, int64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abandon = abandon
}

// awsConfig loads the default chain, with the URL's region and, for
// emulators, static credentials.
func awsConfig(ctx context.Context, cfg Config) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("kinesis: AWS configuration: %w", err)
	}
	return ac, nil
}

func (s *Source) ensureTable(ctx context.Context) error {
	_, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)})
	var nf *ddbtypes.ResourceNotFoundException
	if err == nil {
		return nil
	}
	if !errors.As(err, &nf) {
		return fmt.Errorf("lease table %s: %w", s.cfg.Table, err)
	}
	_, err = s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(s.cfg.Table),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("shard"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("shard"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create lease table %s: %w", s.cfg.Table, err)
	}
	// Poll rather than use the SDK's waiter: its first wait is 20 s.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.cfg.Table)})
		if err == nil && out.Table != nil && out.Table.TableStatus == ddbtypes.TableStatusActive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lease table %s is not active after a minute: %v", s.cfg.Table, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// discover lists the stream's shards (their leases are taken by balance).
func (s *Source) discover(ctx context.Context) error {
	var all []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.cfg.Stream)}
	for {
		out, err := s.kc.ListShards(ctx, in)
		if err != nil {
			return fmt.Errorf("kinesis %s: list shards: %w", s.cfg.Stream, err)
		}
		all = append(all, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range all {
		id := aws.ToString(sh.ShardId)
		if s.shards[id] != nil {
			continue
		}
		n := &shard{id: id, seqs: map[int64]string{}, acked: -1, lastOff: -1, behind: -1}
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p != nil {
				n.parents = append(n.parents, *p)
			}
		}
		s.shards[id] = n
	}
	s.listed = time.Now()
	return nil
}

// open gets the shard's iterator: after its checkpoint, else at the start
// position.
func (s *Source) open(ctx context.Context, n *shard, cp string) error {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(s.cfg.Stream), ShardId: aws.String(n.id)}
	switch {
	case cp != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(cp)
	case s.cfg.Start == "latest":
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	case s.cfg.Start == "trim_horizon" || len(n.parents) > 0:
		// A child shard starts at its beginning: its parents' records
		// came before it.
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	default:
		t, _ := time.Parse(time.RFC3339, s.cfg.Start)
		in.ShardIteratorType, in.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(t)
	}
	out, err := s.kc.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("kinesis %s: shard %s: %w", s.cfg.Stream, n.id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.owned && !n.releasing {
		n.iter = out.ShardIterator
	}
	return nil
}

// readable reports whether a shard may be read: owned, open, and its
// parents done. s.mu held.
func (s *Source) readable(n *shard) bool {
	if !n.owned || n.releasing || n.done || n.ended || n.iter == nil {
		return false
	}
	for _, p := range n.parents {
		if ps := s.shards[p]; ps != nil && !ps.done {
			return false
		}
	}
	return true
}

// Fetch implements graft.Source: one GetRecords on every readable shard.
func (s *Source) Fetch(ctx context.Context) ([]graft.Record, error) {
	for {
		if time.Since(s.listed) > 10*time.Second {
			if err := s.discover(ctx); err != nil {
				s.log.Warn("kinesis: shard discovery failed; retrying", "err", err)
			}
		}
		s.mu.Lock()
		var ready []*shard
		for _, n := range s.shards {
			if s.readable(n) {
				ready = append(ready, n)
			}
		}
		s.mu.Unlock()
		sort.Slice(ready, func(i, j int) bool { return ready[i].id < ready[j].id })
		var recs []graft.Record
		for _, n := range ready {
			s.mu.Lock()
			iter := n.iter
			s.mu.Unlock()
			out, err := s.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(max(s.cfg.MaxRecords, 1)))})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				var exp *types.ExpiredIteratorException
				if errors.As(err, &exp) {
					s.reopen(ctx, n)
					continue
				}
				s.log.Warn("kinesis: get records failed; retrying", "shard", n.id, "err", err)
				continue
			}
			s.mu.Lock()
			if !s.readable(n) || n.iter != iter {
				// The lease moved (or is moving) while we read: the
				// records are its next owner's, from the checkpoint.
				s.mu.Unlock()
				continue
			}
			recs = s.take(n, out, recs)
			s.mu.Unlock()
		}
		if len(recs) > 0 {
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stop:
			return nil, graft.ErrClosed
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// take turns a GetRecords answer into records, de-aggregating KPL
// aggregates. s.mu held.
func (s *Source) take(n *shard, out *kinesis.GetRecordsOutput, recs []graft.Record) []graft.Record {
	for _, r := range out.Records {
		seq := aws.ToString(r.SequenceNumber)
		subs, aerr := kpl.Split(r.Data, aws.ToString(r.PartitionKey), seq)
		if aerr != nil {
			s.log.Warn("kinesis: a KPL aggregate does not decode; it is taken as one record (and dead-lettered)", "shard", n.id, "seq", seq, "err", aerr)
		}
		for i, sub := range subs {
			off := n.next
			n.next++
			// Only the last user record of an aggregate moves the
			// checkpoint to the aggregate's sequence number: a restart
			// after part of it replays all of it.
			n.seqs[off] = n.lastSeq
			if i == len(subs)-1 {
				n.seqs[off] = seq
			}
			n.lastOff = off
			rec := graft.Record{Value: sub.Data, Key: sub.Key, Pos: graft.Position{Partition: n.id, Offset: off}, Ref: sub.Ref}
			if r.ApproximateArrivalTimestamp != nil {
				rec.Arrived = *r.ApproximateArrivalTimestamp
			}
			recs = append(recs, rec)
		}
		n.lastSeq = seq
	}
	n.iter = out.NextShardIterator
	n.behind = aws.ToInt64(out.MillisBehindLatest)
	if n.iter == nil {
		n.ended = true
		s.finishIfDone(n)
	}
	return recs
}

// reopen gets a fresh iterator after the shard's last fetched record.
func (s *Source) reopen(ctx context.Context, n *shard) {
	s.mu.Lock()
	cp := n.lastSeq
	s.mu.Unlock()
	if err := s.open(ctx, n, cp); err != nil {
		s.log.Warn("kinesis: reopen shard", "shard", n.id, "err", err)
	}
}

// finishIfDone marks an ended shard whose records are all acknowledged as
// finishing: its checkpoint SHARD_END is written at the next flush, which
// marks it done and lets its children start. s.mu held.
func (s *Source) finishIfDone(n *shard) {
	if n.owned && n.ended && !n.done && !n.finishing && n.acked >= n.lastOff {
		n.finishing = true
		s.dirty[n.id] = shardEnd
	}
}

// Ack implements graft.Source: the shard's checkpoint moves to the
// sequence number of pos.
func (s *Source) Ack(_ context.Context, pos graft.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.shards[pos.Partition]
	if n == nil || pos.Offset <= n.acked {
		return nil
	}
	seq, ok := n.seqs[pos.Offset]
	if !ok {
		return fmt.Errorf("kinesis: no record at %s:%d", pos.Partition, pos.Offset)
	}
	for off := n.acked + 1; off <= pos.Offset; off++ {
		delete(n.seqs, off)
	}
	n.acked = pos.Offset
	if seq != "" {
		n.ackedSeq = seq
		if n.owned && !n.finishing {
			s.dirty[n.id] = seq
		}
	}
	s.finishIfDone(n)
	return nil
}

// Lag is the number of readable shards not caught up, whoever holds them
// (shardsBehind). 0 with the engine's in-flight count at 0 means every
// record of the stream is committed (/v1/status source_lag).
func (s *Source) Lag(ctx context.Context) (int64, error) {
	behind, _ := s.shardsBehind(ctx, 0)
	return behind, nil
}

// shardsBehind counts the readable shards that are not caught up, whoever
// holds them, and returns how many shards nobody holds:
//
//   - this instance's: not read to the tip at their last read;
//   - another live instance's: behind unless its word at its last renewal
//     is recent (two renewal periods) and says it read the shard to the tip
//     and checkpointed all it read, and the shard holds nothing after what
//     it read (a probe: its owner may have died since its word);
//   - nobody's (no owner, or one that stopped renewing): behind if the
//     shard holds records after its checkpoint.
//
// A probe is one GetShardIterator and one GetRecords of one record (eight
// at a time); an answer younger than maxAge is used again (the metrics
// pass a second; /v1/status 0: a record put before the question is
// counted); a probe that fails counts the shard behind.
func (s *Source) shardsBehind(ctx context.Context, maxAge time.Duration) (behind, unowned int64) {
	type probe struct{ id, after string }
	var probes []probe
	s.mu.Lock()
	now := time.Now()
	for id, sh := range s.shards {
		if sh.done || sh.finishing || !s.parentsDone(sh) {
			continue
		}
		o, seen := s.seen[id]
		switch {
		case sh.owned:
			if !sh.ended && sh.behind != 0 {
				behind++
			}
		case !seen || o.owner == "" || o.expired(now, s.cfg.LeaseTTL):
			unowned++
			if o.checkpoint == "" {
				behind++ // never checkpointed: where its records start is not known here
			} else {
				probes = append(probes, probe{id, o.checkpoint})
			}
		case o.behind != 0 || now.Sub(o.changed) > 2*s.cfg.LeaseTTL/3 || o.updated.IsZero() || now.Sub(o.updated) > 2*s.cfg.LeaseTTL/3,
			!knownSeq(o.read) || o.read != o.checkpoint:
			// Its owner says it is behind, has not said so for two
			// renewals (it may have died since its last word), or holds
			// records it read and has not checkpointed.
			behind++
		default:
			probes = append(probes, probe{id, o.read})
		}
	}
	s.mu.Unlock()
	var more atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, p := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if s.holdsAfter(ctx, p.id, p.after, maxAge) {
				more.Add(1)
			}
		}()
	}
	wg.Wait()
	return behind + more.Load(), unowned
}

// knownSeq reports whether a lease item's read attribute names a record.
func knownSeq(seq string) bool { return seq != "" && seq != noRead }

// noRead is the read attribute of a shard not read yet (DynamoDB
// emulators refuse empty strings).
const noRead = "-"

// holdsAfter reports whether the shard holds records after sequence number
// seq (true when that cannot be told); an answer younger than maxAge is
// used again.
func (s *Source) holdsAfter(ctx context.Context, id, seq string, maxAge time.Duration) bool {
	s.mu.Lock()
	if p, ok := s.probed[id]; ok && p.after == seq && time.Since(p.at) < maxAge {
		s.mu.Unlock()
		return p.more
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	more := true
	it, err := s.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s.cfg.Stream), ShardId: aws.String(id),
		ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(seq)})
	if err == nil {
		var out *kinesis.GetRecordsOutput
		if out, err = s.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)}); err == nil {
			more = len(out.Records) > 0 || aws.ToInt64(out.MillisBehindLatest) > 0
		}
	}
	if err != nil {
		s.log.Debug("kinesis: probing a shard held elsewhere failed; counted behind", "shard", id, "err", err)
	}
	s.mu.Lock()
	s.probed[id] = probed{after: seq, at: time.Now(), more: more}
	s.mu.Unlock()
	return more
}

// probed is the last answer of holdsAfter for a shard.
type probed struct {
	after string
	at    time.Time
	more  bool
}

// readOf is the sequence number of the last record read from a shard, for
// its lease item (noRead before the first).
func (s *Source) readOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.shards[id]; n != nil && n.lastSeq != "" {
		return n.lastSeq
	}
	return noRead
}

// behindOf is a shard's MillisBehindLatest at its last read (-1 before the
// first), for its lease item.
func (s *Source) behindOf(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.shards[id]; n != nil {
		if n.ended {
			return 0
		}
		return n.behind
	}
	return -1
}

// Owned lists the shards whose lease this instance holds, sorted.
func (s *Source) Owned() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, n := range s.shards {
		if n.owned {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Close writes the last checkpoints and gives the leases up, so that other
// instances take them at once rather than after the lease TTL.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.releases.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(s.flush(ctx), s.giveUp(ctx))
	})
	return err
}
