package kinesis

// Leases: several instances share a stream the way the Kinesis Client
// Library does, through one DynamoDB item per shard that holds the shard's
// checkpoint and its lease:
//
//	shard       the shard id (hash key)
//	checkpoint  the sequence number below which everything is committed, or SHARD_END
//	owner       the worker holding the lease (absent: free)
//	counter     incremented by every renewal; a lease whose counter has not
//	            moved for the lease TTL, as seen by another worker's clock,
//	            has a dead owner and may be taken
//	handoff     a worker asking for the lease (balancing)
//	behind, read, updated
//	            the owner's word at its last renewal: MillisBehindLatest of
//	            its last read, the sequence number of the last record it
//	            read ("-": none), and when (its clock); other instances use
//	            them to tell whether the shard is caught up (shardsBehind)
//
// Every write to an item is conditional on its owner, so an instance that
// lost a lease can neither checkpoint nor renew it. Balancing moves leases
// from the busiest worker to the least busy one by handoff: the thief asks,
// the owner stops reading the shard, drains its records in the engine,
// checkpoints and names the thief as owner in one conditional write; only
// then does the thief read, from that checkpoint. A key's records are never
// applied by two instances at once after a handoff. Taking a lease whose
// owner died replays from its last checkpoint (at least once); if the owner
// was only paused, it finds the lease lost at its next renewal and the
// engine drops the shard's records it has not sent to the sink
// (graft.Abandoner); only a batch already at the sink may still land after
// the new owner's writes (the locker's fencing refuses it, and a retry of it
// is dropped once the loss is seen).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// observed is a lease as last scanned, and when its owner or counter last
// changed by this instance's clock.
type observed struct {
	owner, handoff, checkpoint string
	counter                    int64
	changed                    time.Time
	behind                     int64     // the owner's MillisBehindLatest at its last renewal; -1: unknown
	updated                    time.Time // when the owner last wrote the item, by its clock
	read                       string    // the sequence number of the last record the owner read, at its last renewal
}

func (o observed) expired(now time.Time, ttl time.Duration) bool {
	return o.owner != "" && now.Sub(o.changed) > ttl
}

func defaultWorker() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Names of the item's attributes in expressions.
var leaseNames = map[string]string{"#o": "owner", "#c": "counter", "#h": "handoff", "#cp": "checkpoint", "#u": "updated", "#b": "behind", "#r": "read"}

func names(keys ...string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = leaseNames[k]
	}
	return out
}

func str(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
func num(n int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func now() ddbtypes.AttributeValue { return str(time.Now().UTC().Format(time.RFC3339Nano)) }

func attrS(item map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func attrN(item map[string]ddbtypes.AttributeValue, name string) int64 {
	if v, ok := item[name].(*ddbtypes.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func conditionFailed(err error) bool {
	var cf *ddbtypes.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

func (s *Source) key(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"shard": str(id)}
}

// leaseLoop writes checkpoints every checkpoint interval (a finished
// shard's SHARD_END at once: its children wait for it), and renews, scans
// and balances leases every third of the lease TTL.
func (s *Source) leaseLoop() {
	defer close(s.done)
	t := time.NewTicker(min(time.Second, s.cfg.LeaseTTL/3, s.cfg.CheckpointInterval))
	defer t.Stop()
	last, flushed := time.Now(), time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL)
		if time.Since(flushed) >= s.cfg.CheckpointInterval-10*time.Millisecond || s.finishing() {
			flushed = time.Now()
			if err := s.flush(ctx); err != nil {
				s.metrics.add(evCheckpoints)
				s.log.Warn("kinesis: checkpoint failed; retried at the next interval (a restart replays from the last one)", "err", err)
			}
		}
		if time.Since(last) >= s.cfg.LeaseTTL/3-10*time.Millisecond {
			last = time.Now()
			s.renew(ctx)
			if err := s.balance(ctx); err != nil {
				s.log.Warn("kinesis: lease scan failed; retrying", "err", err)
			}
		}
		cancel()
	}
}

// finishing reports whether a finished shard's SHARD_END waits to be written.
func (s *Source) finishing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cp := range s.dirty {
		if cp == shardEnd {
			return true
		}
	}
	return false
}

// flush writes the checkpoints that moved, each conditional on this
// instance still owning the shard. SHARD_END also frees the lease.
func (s *Source) flush(ctx context.Context) error {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = map[string]string{}
	s.mu.Unlock()
	var errs []error
	for id, cp := range dirty {
		in := &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
			UpdateExpression:          aws.String("SET #cp = :cp, #u = :t"),
			ConditionExpression:       aws.String("#o = :me"),
			ExpressionAttributeNames:  names("#cp", "#u", "#o"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":cp": str(cp), ":t": now(), ":me": str(s.cfg.Worker)}}
		if cp == shardEnd {
			in.UpdateExpression = aws.String("SET #cp = :cp, #u = :t REMOVE #o, #h")
			in.ExpressionAttributeNames = names("#cp", "#u", "#o", "#h")
		}
		_, err := s.db.UpdateItem(ctx, in)
		switch {
		case conditionFailed(err):
			s.lost(id, "its checkpoint was refused")
		case err != nil:
			errs = append(errs, fmt.Errorf("checkpoint %s: %w", id, err))
			s.mu.Lock()
			if _, newer := s.dirty[id]; !newer {
				s.dirty[id] = cp // retried at the next flush
			}
			s.mu.Unlock()
		case cp == shardEnd:
			s.mu.Lock()
			if n := s.shards[id]; n != nil {
				n.done, n.owned, n.finishing, n.iter = true, false, false, nil
			}
			s.mu.Unlock()
			s.metrics.add(evFinished)
			s.log.Info("kinesis: shard finished", "shard", id)
		}
	}
	return errors.Join(errs...)
}

// lost drops a lease another instance holds now (or may hold: renewals have
// failed for the TTL). Its records still in the engine are applied; their
// checkpoints are not written.
func (s *Source) lost(id, why string) {
	s.mu.Lock()
	n := s.shards[id]
	was := n != nil && n.owned
	var through int64
	if n != nil {
		n.owned, n.releasing, n.finishing, n.iter = false, false, false, nil
		through = n.lastOff
	}
	delete(s.dirty, id)
	abandon := s.abandon
	s.mu.Unlock()
	if was {
		s.metrics.add(evLost)
		s.log.Warn("kinesis: lease lost; the shard's records not yet sent to the sink are dropped (its new owner replays them); a batch already in the sink may still land after the new owner's writes", "shard", id, "why", why)
		if abandon != nil {
			abandon(id, through)
		}
	}
}

// renew increments the counter of every lease held; one whose owner changed
// is lost. A renewal that names a worker in handoff starts the handoff.
func (s *Source) renew(ctx context.Context) {
	s.mu.Lock()
	var ids []string
	for id, n := range s.shards {
		if n.owned {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	for _, id := range ids {
		out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
			UpdateExpression:          aws.String("SET #c = if_not_exists(#c, :zero) + :one, #b = :behind, #u = :now, #r = :read"),
			ConditionExpression:       aws.String("#o = :me"),
			ExpressionAttributeNames:  names("#c", "#o", "#b", "#u", "#r"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":zero": num(0), ":one": num(1), ":me": str(s.cfg.Worker), ":behind": num(s.behindOf(id)), ":now": now(), ":read": str(s.readOf(id))},
			ReturnValues:              ddbtypes.ReturnValueAllNew})
		if conditionFailed(err) {
			s.lost(id, "another worker owns it")
			continue
		}
		s.mu.Lock()
		n := s.shards[id]
		if err != nil {
			stale := time.Since(n.renewed) > s.cfg.LeaseTTL
			s.mu.Unlock()
			if stale {
				s.lost(id, "renewals failed for the lease TTL: "+err.Error())
			} else {
				s.log.Warn("kinesis: lease renewal failed; retrying", "shard", id, "err", err)
			}
			continue
		}
		n.renewed = time.Now()
		thief := attrS(out.Attributes, "handoff")
		start := thief != "" && thief != s.cfg.Worker && n.owned && !n.releasing
		if start {
			n.releasing = true
			s.releases.Add(1)
		}
		s.mu.Unlock()
		if start {
			go s.handOver(id, thief)
		}
	}
}

// handOver gives a shard to the worker that asked for it: the shard is no
// longer read, its records in the engine are drained and acknowledged, and
// the checkpoint and the new owner are written together.
func (s *Source) handOver(id, thief string) {
	defer s.releases.Done()
	s.log.Info("kinesis: handing a shard over", "shard", id, "to", thief)
	for {
		s.mu.Lock()
		n, drain := s.shards[id], s.drain
		owned, caught := n.owned, n.acked >= n.lastOff
		s.mu.Unlock()
		if !owned {
			return
		}
		if caught {
			break
		}
		if drain != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL)
			if err := drain(ctx, []string{id}); err != nil {
				s.log.Warn("kinesis: drain before handoff", "shard", id, "err", err)
			}
			cancel()
		}
		select {
		case <-s.stop:
			return // Close gives the lease up once the engine has drained
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.mu.Lock()
	cp := s.shards[id].ackedSeq
	s.mu.Unlock()
	set := "SET #o = :thief, #c = if_not_exists(#c, :zero) + :one, #u = :t"
	values := map[string]ddbtypes.AttributeValue{":thief": str(thief), ":zero": num(0), ":one": num(1), ":t": now(), ":me": str(s.cfg.Worker)}
	nm := names("#o", "#c", "#u", "#h")
	if cp != "" {
		set += ", #cp = :cp"
		values[":cp"] = str(cp)
		nm["#cp"] = leaseNames["#cp"]
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL)
	defer cancel()
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
		UpdateExpression: aws.String(set + " REMOVE #h"), ConditionExpression: aws.String("#o = :me AND #h = :thief"),
		ExpressionAttributeNames: nm, ExpressionAttributeValues: values})
	switch {
	case conditionFailed(err) && s.stillOwned(ctx, id):
		// The worker that asked withdrew (it stopped): keep reading.
		s.log.Info("kinesis: handoff withdrawn by the worker that asked; the shard is read on here", "shard", id, "to", thief)
		s.mu.Lock()
		s.shards[id].releasing = false
		s.mu.Unlock()
	case conditionFailed(err):
		s.lost(id, "the handoff was refused")
	case err != nil:
		s.log.Warn("kinesis: handoff failed; reading the shard again (the next renewal retries it)", "shard", id, "err", err)
		s.mu.Lock()
		s.shards[id].releasing = false
		s.mu.Unlock()
	default:
		s.mu.Lock()
		n := s.shards[id]
		n.owned, n.releasing, n.iter = false, false, nil
		if s.dirty[id] != shardEnd {
			delete(s.dirty, id)
		}
		s.mu.Unlock()
		s.metrics.add(evHandedOver)
		s.log.Info("kinesis: shard handed over", "shard", id, "to", thief, "checkpoint", cp)
	}
}

// stillOwned reports whether the lease table says this instance owns the
// shard.
func (s *Source) stillOwned(ctx context.Context, id string) bool {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id), ConsistentRead: aws.Bool(true)})
	return err == nil && out.Item != nil && attrS(out.Item, "owner") == s.cfg.Worker
}

// scan reads the lease table.
func (s *Source) scan(ctx context.Context) ([]map[string]ddbtypes.AttributeValue, error) {
	var items []map[string]ddbtypes.AttributeValue
	in := &dynamodb.ScanInput{TableName: aws.String(s.cfg.Table), ConsistentRead: aws.Bool(true)}
	for {
		out, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("lease table %s: %w", s.cfg.Table, err)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// balance scans the leases and takes this instance's share of the shards
// that can be read (not finished, parents finished): free or expired leases
// first, then, by handoff, one from the busiest worker while it holds more
// than the share. The share is the number of such shards over the number of
// live workers, rounded up.
func (s *Source) balance(ctx context.Context) error {
	items, err := s.scan(ctx)
	if err != nil {
		return err
	}
	at := time.Now()
	me := s.cfg.Worker
	s.mu.Lock()
	for _, it := range items {
		id := attrS(it, "shard")
		o := observed{owner: attrS(it, "owner"), handoff: attrS(it, "handoff"), checkpoint: attrS(it, "checkpoint"), counter: attrN(it, "counter"), changed: at, behind: -1, read: attrS(it, "read")}
		if _, ok := it["behind"]; ok {
			o.behind = attrN(it, "behind")
		}
		if u, err := time.Parse(time.RFC3339Nano, attrS(it, "updated")); err == nil {
			o.updated = u
		}
		if prev, ok := s.seen[id]; ok && prev.owner == o.owner && prev.counter == o.counter {
			o.changed = prev.changed
		}
		s.seen[id] = o
		if n := s.shards[id]; n != nil && o.checkpoint == shardEnd {
			n.done = true
		}
	}
	var free, given []string
	var reopen []*shard
	mine, coming := 0, 0
	load := map[string][]string{me: nil}
	leasable := 0
	for id, n := range s.shards {
		if n.done || n.finishing || !s.parentsDone(n) {
			continue
		}
		leasable++
		o := s.seen[id]
		switch {
		case n.owned:
			if !n.releasing {
				mine++
				if n.iter == nil && !n.ended {
					reopen = append(reopen, n)
				}
			}
		case o.owner == me:
			given = append(given, id) // a handoff to this instance landed
			mine++
		case o.owner == "" || o.expired(at, s.cfg.LeaseTTL):
			free = append(free, id)
		default:
			load[o.owner] = append(load[o.owner], id)
			if o.handoff == me {
				coming++
			}
		}
	}
	target := (leasable + len(load) - 1) / len(load)
	seen := s.seen
	s.mu.Unlock()

	for _, id := range given {
		s.gain(ctx, id, seen[id].checkpoint)
	}
	for _, n := range reopen {
		s.reopen(ctx, n)
	}
	sort.Strings(free)
	for _, id := range free {
		if mine >= target {
			break
		}
		if s.takeLease(ctx, id, seen[id]) {
			mine++
		}
	}
	if mine+coming >= target {
		return nil
	}
	// Ask the busiest worker for one shard, if it holds more than its share.
	var victim string
	for w, ids := range load {
		if w != me && (victim == "" || len(ids) > len(load[victim]) || len(ids) == len(load[victim]) && w < victim) {
			victim = w
		}
	}
	if victim == "" || len(load[victim]) <= target {
		return nil
	}
	ids := load[victim]
	sort.Strings(ids)
	for _, id := range ids {
		if seen[id].handoff != "" {
			continue
		}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
			UpdateExpression: aws.String("SET #h = :me"), ConditionExpression: aws.String("#o = :victim AND attribute_not_exists(#h)"),
			ExpressionAttributeNames:  names("#h", "#o"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":me": str(me), ":victim": str(victim)}})
		if err == nil {
			s.log.Info("kinesis: asked for a shard to balance the load", "shard", id, "owner", victim, "share", target)
			return nil
		}
		if !conditionFailed(err) {
			return fmt.Errorf("ask for shard %s: %w", id, err)
		}
	}
	return nil
}

// parentsDone reports whether every parent of n is finished (a parent no
// longer listed has aged out of the stream). s.mu held.
func (s *Source) parentsDone(n *shard) bool {
	for _, p := range n.parents {
		if ps := s.shards[p]; ps != nil && !ps.done {
			return false
		}
	}
	return true
}

// takeLease takes a free or expired lease: conditional on the owner and
// counter scanned, so two workers racing for it cannot both win.
func (s *Source) takeLease(ctx context.Context, id string, o observed) bool {
	cond := "attribute_not_exists(#o)"
	values := map[string]ddbtypes.AttributeValue{":me": str(s.cfg.Worker), ":zero": num(0), ":one": num(1), ":t": now()}
	if o.owner != "" {
		cond = "#o = :old AND #c = :oldc"
		values[":old"], values[":oldc"] = str(o.owner), num(o.counter)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
		UpdateExpression:         aws.String("SET #o = :me, #c = if_not_exists(#c, :zero) + :one, #u = :t REMOVE #h"),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names("#o", "#c", "#u", "#h"), ExpressionAttributeValues: values,
		ReturnValues: ddbtypes.ReturnValueAllNew})
	if err != nil {
		if !conditionFailed(err) {
			s.log.Warn("kinesis: taking a lease failed", "shard", id, "err", err)
		}
		return false
	}
	if o.owner != "" {
		s.metrics.add(evTakenDead)
		s.log.Warn("kinesis: took the lease of a worker that stopped renewing it; its records after the checkpoint are read again", "shard", id, "from", o.owner)
	}
	cp := attrS(out.Attributes, "checkpoint")
	if cp == shardEnd { // finished since the scan: give it back
		s.mu.Lock()
		s.shards[id].done = true
		s.mu.Unlock()
		s.giveUpOne(ctx, id)
		return false
	}
	s.gain(ctx, id, cp)
	return true
}

// gain starts reading a shard whose lease this instance now holds, after cp.
func (s *Source) gain(ctx context.Context, id, cp string) {
	s.mu.Lock()
	n := s.shards[id]
	n.owned, n.releasing, n.renewed = true, false, time.Now()
	n.ended, n.finishing, n.iter, n.behind = false, false, nil, -1
	// Offsets keep growing: acknowledgements of records read under an
	// earlier lease are at or below acked, and ignored.
	n.seqs = map[int64]string{}
	n.acked, n.lastOff = n.next-1, n.next-1
	n.lastSeq, n.ackedSeq = cp, cp
	delete(s.dirty, id)
	abandon := s.abandon
	s.mu.Unlock()
	if abandon != nil {
		// The shard is this engine's (again): its write cache may hold
		// facts another instance has changed since (graft.Abandoner).
		abandon(id, -1)
	}
	s.metrics.add(evTaken)
	s.log.Info("kinesis: lease taken", "shard", id, "checkpoint", cp)
	if err := s.open(ctx, n, cp); err != nil {
		s.log.Warn("kinesis: opening the shard failed; retrying", "shard", id, "err", err)
	}
}

// giveUp frees every lease held (at Close, after the last checkpoints),
// including those a handoff gave this instance since its last scan.
func (s *Source) giveUp(ctx context.Context) error {
	ids := map[string]bool{}
	for _, id := range s.Owned() {
		ids[id] = true
	}
	items, err := s.scan(ctx)
	var asked []string
	for _, it := range items {
		if attrS(it, "owner") == s.cfg.Worker {
			ids[attrS(it, "shard")] = true
		}
		if attrS(it, "handoff") == s.cfg.Worker {
			asked = append(asked, attrS(it, "shard"))
		}
	}
	errs := []error{err}
	// Withdraw the handoffs this instance asked for: a shard handed to it
	// now would have an owner that is gone, read by nobody until its TTL.
	for _, id := range asked {
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
			UpdateExpression: aws.String("REMOVE #h"), ConditionExpression: aws.String("#h = :me"),
			ExpressionAttributeNames:  names("#h"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":me": str(s.cfg.Worker)}})
		if err != nil && !conditionFailed(err) {
			errs = append(errs, fmt.Errorf("withdraw the handoff of %s: %w", id, err))
		}
		// The withdrawal fails when the owner completed the handoff since
		// the scan: the shard is this instance's now, so give it up too
		// (conditional on that: harmless when the withdrawal won). Without
		// this, a handoff landing while the instance stopped left the
		// shard to nobody until the TTL (CI caught it once).
		ids[id] = true
	}
	for id := range ids {
		errs = append(errs, s.giveUpOne(ctx, id))
	}
	return errors.Join(errs...)
}

func (s *Source) giveUpOne(ctx context.Context, id string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(s.cfg.Table), Key: s.key(id),
		UpdateExpression: aws.String("REMOVE #o, #h"), ConditionExpression: aws.String("#o = :me"),
		ExpressionAttributeNames:  names("#o", "#h"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":me": str(s.cfg.Worker)}})
	s.mu.Lock()
	if n := s.shards[id]; n != nil {
		n.owned, n.iter = false, nil
	}
	s.mu.Unlock()
	if err != nil && !conditionFailed(err) {
		return fmt.Errorf("give up lease %s: %w", id, err)
	}
	return nil
}
