package workload

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/engine"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
)

// WithVersions gives every line the version of its place: the order the
// writes were produced in, which the model applied them in.
func WithVersions(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = `{"version":` + strconv.Itoa(i+1) + `,` + l[1:]
	}
	return out
}

// Partitioned is a source of fixed lines, each in the partition of its key
// (as a Kafka producer places them), partition n delivered lag*n lines
// late: partitions read at different speeds, as after a rebalance or
// behind a slow fetch. It records the acknowledged positions.
type Partitioned struct {
	mu   sync.Mutex
	recs []graft.Record
	next int
	acks map[string]int64
}

// NewPartitioned makes the source of lines past the positions in from
// (acknowledged by an earlier run).
func NewPartitioned(t testing.TB, lines []string, partitions, lag int, from map[string]int64) *Partitioned {
	s := &Partitioned{acks: map[string]int64{}}
	offsets := map[string]int64{}
	var at []int // a record's place in the delivery: its line, partition n lag*n lines later
	for i, l := range lines {
		var w struct{ Key string }
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatal(err)
		}
		h := fnv.New32a()
		h.Write([]byte(w.Key))
		n := int(h.Sum32() % uint32(partitions))
		p := "p" + strconv.Itoa(n)
		offsets[p]++
		if offsets[p] <= from[p] {
			continue
		}
		s.recs = append(s.recs, graft.Record{Value: []byte(l), Pos: graft.Position{Partition: p, Offset: offsets[p]}})
		at = append(at, i+lag*n)
	}
	order := make([]int, len(s.recs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return at[a] - at[b] })
	recs := make([]graft.Record, len(order))
	for i, j := range order {
		recs[i] = s.recs[j]
	}
	s.recs = recs
	return s
}

// Fetch delivers up to 64 records, then io.EOF.
func (s *Partitioned) Fetch(ctx context.Context) ([]graft.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= len(s.recs) {
		return nil, io.EOF
	}
	end := min(s.next+64, len(s.recs))
	out := slices.Clone(s.recs[s.next:end])
	s.next = end
	return out, nil
}

// Ack records the position.
func (s *Partitioned) Ack(_ context.Context, pos graft.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks[pos.Partition] = max(s.acks[pos.Partition], pos.Offset)
	return nil
}

// Close does nothing.
func (s *Partitioned) Close() error { return nil }

// Acked returns the acknowledged positions.
func (s *Partitioned) Acked() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int64{}
	for p, o := range s.acks {
		out[p] = o
	}
	return out
}

// CrashAndRestart runs the lines through engines into sink, each killed
// (a drain deadline too short for the work in flight, as after kill -9)
// once it committed a random number of writes, and restarted from the
// positions acknowledged so far, crashes times; the last runs to the end.
// The lines are in partitions by key, read at different speeds (lag).
// restarted, when set, is called before each restart (a test sink resets
// what it checks per run).
func CrashAndRestart(t testing.TB, sink graft.Sink, letters graft.DeadLetters, cfg engine.Config, lines []string, partitions, lag, crashes int, seed uint64, restarted func()) {
	rng := rand.New(rand.NewPCG(seed, 1))
	from := map[string]int64{}
	cfg.DrainTimeout = time.Millisecond
	for done := 0; ; {
		src := NewPartitioned(t, lines, partitions, lag, from)
		e, err := engine.New(sink, letters, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if done < crashes {
			at := int64(50 + rng.IntN(400))
			go func() {
				for e.Stats().Committed.Load() < at && ctx.Err() == nil {
					time.Sleep(100 * time.Microsecond)
				}
				cancel()
			}()
		}
		err = e.Run(ctx, src)
		crashed := ctx.Err() != nil
		cancel()
		if err != nil && !errors.Is(err, engine.ErrDrainTimeout) {
			t.Fatalf("run %d: %v", done, err)
		}
		for p, off := range src.Acked() {
			from[p] = max(from[p], off)
		}
		if !crashed {
			t.Logf("%d crashes", done)
			return
		}
		done++
		if done > crashes+50 {
			t.Fatal("never finished")
		}
		if restarted != nil {
			restarted()
		}
	}
}

// RestartVersioned is the versioned restart test on a store (the engine's
// TestRestartAcrossPartitionsWithVersions runs the same on its
// fault-injecting sink): n writes of the random workload from seed, each
// versioned by its place; its stable and mortal vertices first, then the
// rest in four partitions by key, partition k lag*k writes late, through
// ten kill-and-restarts, at most 50 writes a batch (many crash points).
// The graph r exports must be the model's, the writes applied in version
// order, and the dead letters the writes the model rejects.
func RestartVersioned(t *testing.T, sink graft.Sink, r graft.Reader, seed uint64, n, lag int) {
	t.Helper()
	const stable = 50
	wl := Random(t, seed, n, 30, stable)
	lines := WithVersions(wl.Lines)
	letters := &memgraph.Letters{}
	cfg := engine.Default()
	cfg.MaxBatchWrites = 50
	prefix := stable + stable/2 // the stable and mortal vertices, before anything links to them
	CrashAndRestart(t, sink, letters, cfg, lines[:prefix], 4, 0, 0, seed, nil)
	CrashAndRestart(t, sink, letters, cfg, lines[prefix:], 4, lag, 10, seed, nil)
	conformance.CheckModel(t, r, wl.Model)
	wl.CheckLetters(t, letters.All())
}
