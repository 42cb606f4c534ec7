// Package redis is the write cache in Redis, shared by every graft
// process writing one graph (graft.SharedCache). docs/cache.md explains
// what is cached and why a fact in it is always true.
//
// Keys, under the prefix (default "graft:"; with Redis Cluster put a hash
// tag in it, "graft:{g1}:", since every script touches many keys):
//
//	epoch    random; a new one voids every fact (after an outage, or data loss)
//	gen      edge-group generation; a vertex delete bumps it
//	clock    batch versions
//	f:KEY    HASH, the facts of an element: _v version, _e epoch, then
//	         vertex: _l label, p:NAME → value JSON
//	         group:  _g generation, _x exact (1|0), t:TARGET → props JSON
//	n:KEY    the version of the last batch that began writing the element
//	i:KEY    batches writing the element now
//
// KEY is a vertex ("v\x00" id) or an edge group ("g\x00" from "\x00" label).
package redis

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/redisurl"
)

// Options tune the cache.
type Options struct {
	Prefix string        // key prefix, one per graph; default "graft:"
	TTL    time.Duration // how long a fact lives; default 24h
	// InflightTTL bounds how long the mark of a batch that never finished
	// (its process crashed) blocks publishing its elements; default 10m.
	InflightTTL time.Duration
}

// Cache implements graft.SharedCache in Redis.
type Cache struct {
	rdb  goredis.UniversalClient
	opts Options
}

var _ graft.SharedCache = (*Cache)(nil)

// ParseURL reads redis://[USER:PASSWORD@]HOST:PORT/DB[?prefix=…&ttl=…]
// (rediss:// for TLS).
func ParseURL(raw string) (*goredis.Options, Options, error) {
	var o Options
	ro, q, err := redisurl.Parse(raw, "cache", "prefix", "ttl")
	if err != nil {
		return nil, o, err
	}
	o.Prefix = q.Get("prefix")
	if s := q.Get("ttl"); s != "" {
		if o.TTL, err = time.ParseDuration(s); err != nil || o.TTL <= 0 {
			return nil, o, fmt.Errorf("cache %q: ttl=%q: a positive duration (24h)", redisurl.Redact(raw), s)
		}
	}
	return ro, o, nil
}

// Dial returns a cache on a new client for raw (see ParseURL). It does not
// wait for Redis: the engine bypasses a cache that does not answer.
func Dial(raw string) (*Cache, error) {
	ro, o, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return New(goredis.NewClient(ro), o), nil
}

// Open is Dial, then a check that Redis answers.
func Open(ctx context.Context, raw string) (*Cache, error) {
	r, err := Dial(raw)
	if err != nil {
		return nil, err
	}
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		r.Close()
		return nil, fmt.Errorf("cache %s: %w", redisurl.Redact(raw), err)
	}
	return r, nil
}

// New wraps a client.
func New(rdb goredis.UniversalClient, o Options) *Cache {
	if o.Prefix == "" {
		o.Prefix = "graft:"
	}
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.InflightTTL <= 0 {
		o.InflightTTL = 10 * time.Minute
	}
	return &Cache{rdb: rdb, opts: o}
}

// Close closes the client.
func (r *Cache) Close() error { return r.rdb.Close() }

// Ping checks that Redis answers.
func (r *Cache) Ping(ctx context.Context) error { return r.rdb.Ping(ctx).Err() }

func (r *Cache) key(kind, k string) string { return r.opts.Prefix + kind + k }

func randomEpoch() string {
	var b [8]byte
	rand.Read(b[:])
	return strconv.FormatUint(binary.LittleEndian.Uint64(b[:])>>1|1, 10)
}

var loadScript = goredis.NewScript(`
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
  epoch = redis.call('GET', KEYS[1])
end
local out = {epoch, redis.call('GET', KEYS[2]) or '0'}
for i = 3, #KEYS do
  local fv = redis.call('HGET', KEYS[i], '_v')
  if fv and redis.call('HGET', KEYS[i], '_e') == epoch then
    if fv == ARGV[i-1] then
      out[#out+1] = 1
    else
      out[#out+1] = redis.call('HGETALL', KEYS[i])
    end
  else
    out[#out+1] = 0
  end
end
return out
`)

// Load implements graft.SharedCache.
func (r *Cache) Load(ctx context.Context, keys []string, have []uint64) (graft.SharedLoad, error) {
	ks := make([]string, 0, len(keys)+2)
	ks = append(ks, r.key("", "epoch"), r.key("", "gen"))
	args := make([]any, 0, len(keys)+1)
	args = append(args, randomEpoch())
	for i, k := range keys {
		ks = append(ks, r.key("f:", k))
		args = append(args, strconv.FormatUint(have[i], 10))
	}
	res, err := loadScript.Run(ctx, r.rdb, ks, args...).Slice()
	if err != nil {
		return graft.SharedLoad{}, fmt.Errorf("redis load: %w", err)
	}
	if len(res) != len(keys)+2 {
		return graft.SharedLoad{}, fmt.Errorf("redis load: %d answers for %d keys", len(res), len(keys))
	}
	var l graft.SharedLoad
	if l.Epoch, err = uintOf(res[0]); err != nil {
		return l, fmt.Errorf("redis load: epoch: %w", err)
	}
	if l.Gen, err = uintOf(res[1]); err != nil {
		return l, fmt.Errorf("redis load: gen: %w", err)
	}
	l.Same, l.Facts = make([]bool, len(keys)), make([]*graft.SharedFact, len(keys))
	for i, k := range keys {
		switch v := res[i+2].(type) {
		case int64:
			l.Same[i] = v == 1
		case []any:
			f, err := decodeFact(k, v)
			if err != nil {
				return l, fmt.Errorf("redis load: %q: %w", k, err)
			}
			l.Facts[i] = f
		default:
			return l, fmt.Errorf("redis load: %q: unexpected %T", k, v)
		}
	}
	return l, nil
}

func uintOf(v any) (uint64, error) {
	switch x := v.(type) {
	case string:
		return strconv.ParseUint(x, 10, 64)
	case int64:
		return uint64(x), nil
	}
	return 0, fmt.Errorf("unexpected %T", v)
}

// beginScript: KEYS gen, clock, then n:, i:, f: per element; ARGV deletes,
// in-flight TTL ms, then per element the version of the fact the batch was
// planned with ('0': none). An element is alone (1) when no other batch is
// writing it and, if the batch was planned with a fact, that fact is still
// the one stored: a batch that began (and maybe finished) since then may
// have changed what the fact says.
var beginScript = goredis.NewScript(`
if ARGV[1] == '1' then redis.call('INCR', KEYS[1]) end
local v = redis.call('INCR', KEYS[2])
local out = {v}
local a = 3
for i = 3, #KEYS, 3 do
  local fresh = ARGV[a] == '0' or redis.call('HGET', KEYS[i+2], '_v') == ARGV[a]
  a = a + 1
  redis.call('SET', KEYS[i], v, 'PX', ARGV[2])
  local alone = redis.call('INCR', KEYS[i+1]) == 1 and fresh
  out[#out+1] = alone and 1 or 0
  redis.call('PEXPIRE', KEYS[i+1], ARGV[2])
  redis.call('DEL', KEYS[i+2])
end
return out
`)

// Begin implements graft.SharedCache.
func (r *Cache) Begin(ctx context.Context, keys []string, planned []uint64, deletes bool) (graft.SharedTicket, error) {
	if len(planned) != len(keys) {
		return graft.SharedTicket{}, fmt.Errorf("redis begin: %d planned versions for %d keys", len(planned), len(keys))
	}
	ks := make([]string, 0, 3*len(keys)+2)
	ks = append(ks, r.key("", "gen"), r.key("", "clock"))
	for _, k := range keys {
		ks = append(ks, r.key("n:", k), r.key("i:", k), r.key("f:", k))
	}
	del := "0"
	if deletes {
		del = "1"
	}
	args := make([]any, 0, 2+len(keys))
	args = append(args, del, r.opts.InflightTTL.Milliseconds())
	for _, v := range planned {
		args = append(args, strconv.FormatUint(v, 10))
	}
	res, err := beginScript.Run(ctx, r.rdb, ks, args...).Int64Slice()
	if err != nil {
		return graft.SharedTicket{}, fmt.Errorf("redis begin: %w", err)
	}
	if len(res) != len(keys)+1 {
		return graft.SharedTicket{}, fmt.Errorf("redis begin: %d answers for %d keys", len(res), len(keys))
	}
	t := graft.SharedTicket{Keys: keys, Versions: make([]uint64, len(keys)), Alone: make([]bool, len(keys)), Deletes: deletes}
	for i := range keys {
		t.Versions[i] = uint64(res[0])
		t.Alone[i] = res[i+1] == 1
	}
	return t, nil
}

// publishScript: KEYS epoch, gen, then n:, i:, f: per element; ARGV
// version, the batch's epoch, TTL ms, deletes, then per element: alone,
// field count, fields and values.
var publishScript = goredis.NewScript(`
local sameEpoch = redis.call('GET', KEYS[1]) == ARGV[2]
local pos = 5
for i = 3, #KEYS, 3 do
  local alone, nf = ARGV[pos], tonumber(ARGV[pos+1])
  pos = pos + 2
  if redis.call('DECR', KEYS[i+1]) <= 0 then redis.call('DEL', KEYS[i+1]) end
  redis.call('DEL', KEYS[i+2])
  if sameEpoch and alone == '1' and nf > 0 and redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('HSET', KEYS[i+2], '_v', ARGV[1], '_e', ARGV[2])
    for j = pos, pos + 2*nf - 1, 200 do
      redis.call('HSET', KEYS[i+2], unpack(ARGV, j, math.min(j + 199, pos + 2*nf - 1)))
    end
    redis.call('PEXPIRE', KEYS[i+2], ARGV[3])
  end
  pos = pos + 2*nf
end
if ARGV[4] == '1' then redis.call('INCR', KEYS[2]) end
return 1
`)

// Publish implements graft.SharedCache.
func (r *Cache) Publish(ctx context.Context, t graft.SharedTicket, facts []*graft.SharedFact) error {
	return r.finish(ctx, t, facts)
}

// Abort implements graft.SharedCache.
func (r *Cache) Abort(ctx context.Context, t graft.SharedTicket) error {
	return r.finish(ctx, t, nil)
}

func (r *Cache) finish(ctx context.Context, t graft.SharedTicket, facts []*graft.SharedFact) error {
	if len(t.Keys) == 0 {
		return nil
	}
	ks := make([]string, 0, 3*len(t.Keys)+2)
	ks = append(ks, r.key("", "epoch"), r.key("", "gen"))
	del := "0"
	if t.Deletes {
		del = "1"
	}
	args := []any{strconv.FormatUint(t.Versions[0], 10), strconv.FormatUint(t.Epoch, 10), r.opts.TTL.Milliseconds(), del}
	for i, k := range t.Keys {
		ks = append(ks, r.key("n:", k), r.key("i:", k), r.key("f:", k))
		alone := "0"
		if t.Alone[i] {
			alone = "1"
		}
		var fields []string
		if facts != nil && facts[i] != nil {
			fields = encodeFact(k, facts[i])
		}
		args = append(args, alone, len(fields)/2)
		for _, f := range fields {
			args = append(args, f)
		}
	}
	if err := publishScript.Run(ctx, r.rdb, ks, args...).Err(); err != nil {
		if facts == nil {
			return fmt.Errorf("redis abort: %w", err)
		}
		return fmt.Errorf("redis publish: %w", err)
	}
	return nil
}

// Recover implements graft.SharedCache: a new epoch voids every fact.
func (r *Cache) Recover(ctx context.Context) error {
	return r.rdb.Set(ctx, r.key("", "epoch"), randomEpoch(), 0).Err()
}

// Clear deletes every key under the prefix (graft bench, tests).
func (r *Cache) Clear(ctx context.Context) error {
	iter := r.rdb.Scan(ctx, 0, r.opts.Prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := r.rdb.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return r.rdb.Del(ctx, batch...).Err()
	}
	return nil
}

// encodeFact returns the fields of a fact's hash, without _v and _e.
func encodeFact(k string, f *graft.SharedFact) []string {
	if graft.IsVertexCacheKey(k) {
		out := make([]string, 0, 2+2*len(f.Props))
		out = append(out, "_l", f.Label)
		for name, v := range f.Props {
			out = append(out, "p:"+name, string(v.AppendJSON(nil)))
		}
		return out
	}
	exact := "0"
	if f.Exact {
		exact = "1"
	}
	out := make([]string, 0, 4+2*len(f.Targets))
	out = append(out, "_g", strconv.FormatUint(f.Gen, 10), "_x", exact)
	for t, props := range f.Targets {
		out = append(out, "t:"+t, string(props.AppendJSON(nil)))
	}
	return out
}

func decodeFact(k string, kv []any) (*graft.SharedFact, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("odd hash")
	}
	f := &graft.SharedFact{}
	vertex := graft.IsVertexCacheKey(k)
	if vertex {
		f.Props = graft.Props{}
	} else {
		f.Targets = map[string]graft.Props{}
	}
	for i := 0; i < len(kv); i += 2 {
		name, _ := kv[i].(string)
		val, _ := kv[i+1].(string)
		var err error
		switch {
		case name == "_v":
			f.Version, err = strconv.ParseUint(val, 10, 64)
		case name == "_e":
		case name == "_l":
			f.Label = val
		case name == "_g":
			f.Gen, err = strconv.ParseUint(val, 10, 64)
		case name == "_x":
			f.Exact = val == "1"
		case strings.HasPrefix(name, "p:") && vertex:
			f.Props[name[2:]], err = graft.ParseValue([]byte(val))
		case strings.HasPrefix(name, "t:") && !vertex:
			var p graft.Props
			err = p.UnmarshalJSON([]byte(val))
			if len(p) == 0 {
				p = nil
			}
			f.Targets[name[2:]] = p
		default:
			err = fmt.Errorf("unknown field %q", name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if vertex && f.Label == "" {
		return nil, errors.New("vertex fact without a label")
	}
	return f, nil
}
