package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/model"
)

// Result is one strategy's run (the --json shape of graft bench).
type Result struct {
	Strategy     string  `json:"strategy"`
	Sink         string  `json:"sink"`
	Writes       int     `json:"writes"`
	Ops          int     `json:"ops"`
	Seconds      float64 `json:"seconds"`
	WritesPerSec float64 `json:"writes_per_sec"`
	Conflicts    int64   `json:"conflicts"`
	Retries      int64   `json:"retries"`
	DeadLetters  int64   `json:"dead_letters"`
	Eliminated   int64   `json:"eliminated_ops"` // graft: ops the write cache proved applied
	Coalesced    int64   `json:"coalesced_ops"`  // graft: ops redundant with an earlier op of their batch
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Correct      bool    `json:"correct"`
	Differences  string  `json:"differences,omitempty"`
}

// Store is a sink that can be read back and emptied between runs.
type Store interface {
	graft.Sink
	graft.Reader
	Reset(ctx context.Context) error
}

// Workload is a list of writes and the graph applying them in order gives,
// computed by the reference semantics, independently of any pipeline.
type Workload struct {
	Writes []*graft.Write
	Ops    int
	Model  *model.Graph
}

// NewWorkload generates n writes of the fleet workload (all of them when n is
// 0: setup, then ten updates per device) and their model.
func NewWorkload(cfg FleetConfig, n int) (*Workload, error) {
	if n <= 0 {
		n = cfg.Orgs*(cfg.DevicesPerOrg+1) + cfg.Orgs*cfg.DevicesPerOrg*10
	}
	g := NewFleet(cfg)
	wl := &Workload{Model: model.New()}
	for i := 0; i < n; i++ {
		w := g.Next()
		if err := wl.Model.ApplyWrite(w); err != nil {
			return nil, fmt.Errorf("model: write %s: %w", w.ID, err)
		}
		wl.Writes = append(wl.Writes, w)
		wl.Ops += len(w.Ops)
	}
	return wl, nil
}

// latencies collects per-write latencies.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

var (
	_ graft.Source      = (*memSource)(nil)
	_ graft.DeadLetters = (*countDLQ)(nil)
)

func (l *latencies) add(d time.Duration, n int) {
	l.mu.Lock()
	for ; n > 0; n-- {
		l.d = append(l.d, d)
	}
	l.mu.Unlock()
}

func (l *latencies) percentile(q float64) float64 {
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return float64(l.d[int(q*float64(len(l.d)-1))].Microseconds()) / 1000
}

// timed wraps a sink: each write's latency is the duration of the
// transaction that committed it.
type timed struct {
	Store
	lat *latencies
}

func (t *timed) Apply(ctx context.Context, b *graft.Batch) error {
	start := time.Now()
	err := t.Store.Apply(ctx, b)
	if err == nil {
		t.lat.add(time.Since(start), len(b.Writes))
	}
	return err
}

type memSource struct {
	recs []graft.Record
}

func (s *memSource) Fetch(context.Context) ([]graft.Record, error) {
	if len(s.recs) == 0 {
		return nil, io.EOF
	}
	n := min(512, len(s.recs))
	out := s.recs[:n]
	s.recs = s.recs[n:]
	return out, nil
}
func (s *memSource) Ack(context.Context, graft.Position) error { return nil }
func (s *memSource) Close() error                              { return nil }

type countDLQ struct{ n atomic.Int64 }

func (d *countDLQ) Append(_ context.Context, ls []*graft.Letter) error {
	d.n.Add(int64(len(ls)))
	return nil
}

// RunGraft runs the writes through the engine (cfg tunes it: CacheSize -1 is
// the no-cache ablation).
func RunGraft(ctx context.Context, name string, s Store, wl *Workload, cfg engine.Config) (Result, error) {
	lat := &latencies{}
	src := &memSource{}
	for i, w := range wl.Writes {
		src.recs = append(src.recs, graft.Record{Value: w.AppendJSON(nil), Pos: graft.Position{Partition: "bench", Offset: int64(i + 1)}})
	}
	dlq := &countDLQ{}
	e, err := engine.New(&timed{Store: s, lat: lat}, dlq, cfg)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := e.Run(ctx, src); err != nil {
		return Result{}, err
	}
	st := e.Stats().Snapshot()
	return Result{Strategy: name, Seconds: time.Since(start).Seconds(), Conflicts: st.Conflicts, Retries: st.Retries,
		DeadLetters: dlq.n.Load(), Eliminated: st.Eliminated, Coalesced: st.Coalesced,
		P50ms: lat.percentile(0.5), P99ms: lat.percentile(0.99)}, nil
}

// RunPool is the graph writer's design: workers take events from one queue in
// arrival order and apply each in its own transaction; a conflict is
// (or a missing edge endpoint: events of one organization overtake each
// other in the pool) is retried after a random 50–250 ms sleep, up to
// maxAttempts, then the event is given up (a dead letter). With lockByKey, each event holds a lock on its
// key (the organization) while it is applied — the graph writer's second design:
// in-process, or in Redis when redis is not nil (the graph writer's Redisson lock).
func RunPool(ctx context.Context, name string, s Store, wl *Workload, workers, maxAttempts int, lockByKey bool, redis graft.Locker) (Result, error) {
	lat := &latencies{}
	queue := make(chan *graft.Write)
	var conflicts, retries, dead atomic.Int64
	var locks sync.Map // key → *sync.Mutex
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 99))
			for w := range queue {
				var lease graft.Lease
				switch {
				case lockByKey && redis != nil:
					for {
						l, ok, err := redis.Acquire(ctx, []string{w.Key}, 30*time.Second)
						if err != nil {
							errOnce.Do(func() { firstErr = err })
							return
						}
						if ok {
							lease = l
							break
						}
						time.Sleep(time.Millisecond)
					}
				case lockByKey:
					m, _ := locks.LoadOrStore(w.Key, &sync.Mutex{})
					m.(*sync.Mutex).Lock()
				}
				t0 := time.Now()
			attempts:
				for attempt := 1; ; attempt++ {
					err := s.Apply(ctx, &graft.Batch{Writes: []*graft.Write{w}})
					if err == nil {
						lat.add(time.Since(t0), 1)
						break
					}
					switch graft.ClassOf(err) {
					case graft.Conflict, graft.Transient, graft.Reconnect, graft.Throttled, graft.MissingEndpoint:
						if graft.ClassOf(err) == graft.Conflict {
							conflicts.Add(1)
						}
						if attempt < maxAttempts {
							retries.Add(1)
							time.Sleep(time.Duration(50+rng.IntN(201)) * time.Millisecond)
							continue
						}
					case graft.Fatal:
						errOnce.Do(func() { firstErr = err })
					}
					dead.Add(1)
					break attempts
				}
				switch {
				case lockByKey && redis != nil:
					redis.Release(ctx, lease)
				case lockByKey:
					m, _ := locks.Load(w.Key)
					m.(*sync.Mutex).Unlock()
				}
			}
		}(uint64(i + 1))
	}
	for _, w := range wl.Writes {
		if ctx.Err() != nil || firstErr != nil {
			break
		}
		queue <- w
	}
	close(queue)
	wg.Wait()
	if firstErr != nil {
		return Result{}, firstErr
	}
	return Result{Strategy: name, Seconds: time.Since(start).Seconds(), Conflicts: conflicts.Load(), Retries: retries.Load(),
		DeadLetters: dead.Load(), P50ms: lat.percentile(0.5), P99ms: lat.percentile(0.99)}, nil
}

// Check compares the store's graph with the workload's model.
func Check(ctx context.Context, s graft.Reader, wl *Workload) (bool, string, error) {
	var gv []graft.Vertex
	var ge []graft.Edge
	err := s.Export(ctx,
		func(v *graft.Vertex) error { gv = append(gv, *v); return nil },
		func(e *graft.Edge) error { ge = append(ge, *e); return nil })
	if err != nil {
		return false, "", err
	}
	wv, we := wl.Model.Snapshot()
	d := model.Diff(wv, we, gv, ge)
	return d == "", d, nil
}

// WithVersions returns the workload with each write's version its place in
// it (the model's order), for the guarded strategy (graft-versions).
func (wl *Workload) WithVersions() *Workload {
	out := &Workload{Writes: make([]*graft.Write, len(wl.Writes)), Ops: wl.Ops, Model: wl.Model}
	for i, w := range wl.Writes {
		c := *w
		c.Version = int64(i + 1)
		out.Writes[i] = &c
	}
	return out
}
