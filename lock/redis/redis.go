// Package redis gives graft batches leases on their keys in Redis
// (graft.Locker), for deployments where one key can reach several graft
// processes.
//
// Every key of a batch is taken in one Lua script, all or nothing, so two
// batches never hold parts of each other's keys (no deadlock, and no lock
// order to get wrong). Each acquisition takes a fencing token from a counter
// that only grows; the sink stores the highest token committed per key and
// refuses an older holder (graft.Batch.Fence), so a holder whose lease
// expired while it was paused cannot overwrite a newer holder's writes.
//
// Why not go-redsync or bsm/redislock: both lock one key per call. Taking a
// batch's keys one by one needs a global order and partial-hold handling,
// and neither gives fencing tokens; one script does both in one round trip.
//
// Keys under the prefix (default "graft:"): lock:KEY holds OWNER:TOKEN with
// the lease's TTL; fence is the token counter. With Redis Cluster put a hash
// tag in the prefix ("graft:{g1}:").
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/redisurl"
)

// Locker implements graft.Locker in Redis.
type Locker struct {
	rdb    goredis.UniversalClient
	prefix string
	owner  string
}

var _ graft.Locker = (*Locker)(nil)

// ParseURL reads redis://[USER:PASSWORD@]HOST:PORT/DB[?prefix=graft:]
// (rediss:// for TLS).
func ParseURL(raw string) (*goredis.Options, string, error) {
	ro, q, err := redisurl.Parse(raw, "lock", "prefix")
	if err != nil {
		return nil, "", err
	}
	return ro, q.Get("prefix"), nil
}

// Dial returns a locker on a new client for raw (see ParseURL). It does not
// wait for Redis: the engine pauses writing while the locker does not answer.
func Dial(raw string) (*Locker, error) {
	ro, prefix, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return New(goredis.NewClient(ro), prefix), nil
}

// New wraps a client; each Locker is one owner (one graft process).
func New(rdb goredis.UniversalClient, prefix string) *Locker {
	if prefix == "" {
		prefix = "graft:"
	}
	var b [8]byte
	rand.Read(b[:])
	return &Locker{rdb: rdb, prefix: prefix, owner: hex.EncodeToString(b[:])}
}

// Ping checks that Redis answers.
func (r *Locker) Ping(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }

// Close closes the client.
func (r *Locker) Close() error { return r.rdb.Close() }

var acquireScript = goredis.NewScript(`
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
local token = redis.call('INCR', KEYS[1])
local v = ARGV[1] .. ':' .. token
for i = 2, #KEYS do redis.call('SET', KEYS[i], v, 'PX', ARGV[2]) end
return token
`)

func (r *Locker) lockKeys(keys []string, withFence bool) []string {
	out := make([]string, 0, len(keys)+1)
	if withFence {
		out = append(out, r.prefix+"fence")
	}
	for _, k := range keys {
		out = append(out, r.prefix+"lock:"+k)
	}
	return out
}

// Acquire implements graft.Locker. keys must be sorted (they are:
// graft.Batch.FenceKeys).
func (r *Locker) Acquire(ctx context.Context, keys []string, ttl time.Duration) (graft.Lease, bool, error) {
	t, err := acquireScript.Run(ctx, r.rdb, r.lockKeys(keys, true), r.owner, ttl.Milliseconds()).Int64()
	if err != nil {
		return graft.Lease{}, false, fmt.Errorf("redis lock: %w", err)
	}
	if t == 0 {
		return graft.Lease{}, false, nil
	}
	return graft.Lease{Keys: keys, Token: uint64(t), Value: r.owner + ":" + strconv.FormatInt(t, 10)}, true, nil
}

var renewScript = goredis.NewScript(`
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`)

// Renew implements graft.Locker: all the keys still held, or lost.
func (r *Locker) Renew(ctx context.Context, l graft.Lease, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, r.rdb, r.lockKeys(l.Keys, false), l.Value, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fmt.Errorf("redis lock renew: %w", err)
	}
	return n == 1, nil
}

var releaseScript = goredis.NewScript(`
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
`)

// Release implements graft.Locker: only the keys the lease still holds.
func (r *Locker) Release(ctx context.Context, l graft.Lease) error {
	if err := releaseScript.Run(ctx, r.rdb, r.lockKeys(l.Keys, false), l.Value).Err(); err != nil {
		return fmt.Errorf("redis lock release: %w", err)
	}
	return nil
}
