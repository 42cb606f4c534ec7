package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/conformance"
	"github.com/graftdb/graft/internal/memgraph"
)

// inDoubtOnce commits the first batch that deletes a vertex, then reports
// a failure that does not say whether it committed (a connection lost
// during the commit): the engine must apply the batch again.
type inDoubtOnce struct {
	*memgraph.Sink
	mu      sync.Mutex
	tripped bool
	batch   int // writes in the batch it tripped on
}

func (s *inDoubtOnce) Apply(ctx context.Context, b *graft.Batch) error {
	if err := s.Sink.Apply(ctx, b); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tripped {
		return nil
	}
	for _, w := range b.Writes {
		for _, op := range w.Ops {
			if op.Kind == graft.DeleteVertex {
				s.tripped, s.batch = true, len(b.Writes)
				return graft.NewError(graft.Transient, errors.New("injected: commit outcome unknown"))
			}
		}
	}
	return nil
}

// A batch [w2: edge v→b, w3: deleteVertex b] that committed but was reported
// failed is applied again: w2's edge op no longer finds b. Applied one by
// one, the writes are all accepted and leave no edge; before, w2 was parked,
// then dead-lettered as missing_endpoint. A batch that deletes and recreates
// b is replayed whole: the edge w2's replay brings back is removed again.
func TestInDoubtReplayOfADeletedEndpoint(t *testing.T) {
	const recreate = `{"op":"deleteVertex","id":"b"},{"op":"upsertVertex","id":"b","label":"y"}`
	for _, c := range []struct {
		name, w3, want string
		inBatch        bool // w1, which creates v and b, is in the batch
	}{
		{"deleted", `{"op":"deleteVertex","id":"b"}`, `{"type":"vertex","id":"v","label":"x","props":{}}`, false},
		{"deleted and recreated", recreate, `{"type":"vertex","id":"b","label":"y","props":{}}
{"type":"vertex","id":"v","label":"x","props":{}}`, false},
		// w1's replay upserts b with label x over w3's b of label y: a
		// permanent error before (w1 dead-lettered).
		{"created, deleted and recreated", recreate, `{"type":"vertex","id":"b","label":"y","props":{}}
{"type":"vertex","id":"v","label":"x","props":{}}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &inDoubtOnce{Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}}
			const w1 = `{"id":"w1","key":"a","ops":[{"op":"upsertVertex","id":"v","label":"x"},{"op":"upsertVertex","id":"b","label":"x"}]}`
			ls := lines(
				`{"id":"w2","key":"b","ops":[{"op":"upsertEdge","label":"to","from":"v","to":"b"}]}`,
				`{"id":"w3","key":"c","ops":[`+c.w3+`]}`,
			)
			if c.inBatch {
				ls = append([]string{w1}, ls...)
			} else {
				// v and b exist before: written by an earlier batch.
				w, _ := graft.Decode([]byte(w1), "", graft.DefaultLimits)
				if err := sink.Sink.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w}}); err != nil {
					t.Fatal(err)
				}
			}
			dlq := &memDLQ{}
			src := newSliceSource(t, ls, 1, nil)
			e := run(t, sink, dlq, src, testConfig())
			if !sink.tripped || sink.batch < 2 {
				t.Fatalf("the in-doubt failure hit a batch of %d writes (tripped %v): the test needs w2 and w3 together", sink.batch, sink.tripped)
			}
			if len(dlq.letters) > 0 {
				t.Fatalf("dead-lettered: %s %s", dlq.letters[0].WriteID, dlq.letters[0].Error)
			}
			conformance.CheckExport(t, sink.Graph, c.want)
			if n := e.Stats().Committed.Load(); n != int64(len(ls)) {
				t.Fatalf("%d writes committed, want %d", n, len(ls))
			}
		})
	}
}

// One write is not idempotent either when it links to a vertex and then
// deletes it: [edge v→b, deleteVertex b] committed, then replayed, fails
// its own edge op (dead-lettered before, as missing_endpoint; the random
// workload found it). An upsert of b with another label before the delete
// and a recreation after fails the replay the same way (permanent).
func TestInDoubtReplayOfAWriteThatDeletesWhatItLinks(t *testing.T) {
	for _, c := range []struct{ name, ops, want string }{
		{"edge then delete", `{"op":"upsertEdge","label":"to","from":"v","to":"b"},{"op":"deleteVertex","id":"b"}`,
			`{"type":"vertex","id":"v","label":"x","props":{}}`},
		{"upsert, edge, delete, recreate", `{"op":"upsertVertex","id":"b","label":"x","props":{"p":1}},{"op":"upsertEdge","label":"to","from":"v","to":"b"},{"op":"deleteVertex","id":"b"},{"op":"upsertVertex","id":"b","label":"y"},{"op":"upsertEdge","label":"to","from":"b","to":"v"}`,
			`{"type":"vertex","id":"b","label":"y","props":{}}
{"type":"vertex","id":"v","label":"x","props":{}}
{"type":"edge","label":"to","from":"b","to":"v","props":{}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &inDoubtOnce{Sink: &memgraph.Sink{Graph: memgraph.New(), Lim: testLimits}}
			w0, _ := graft.Decode([]byte(`{"id":"w0","key":"a","ops":[{"op":"upsertVertex","id":"v","label":"x"},{"op":"upsertVertex","id":"b","label":"x"}]}`), "", graft.DefaultLimits)
			if err := sink.Sink.Apply(context.Background(), &graft.Batch{Writes: []*graft.Write{w0}}); err != nil {
				t.Fatal(err)
			}
			dlq := &memDLQ{}
			src := newSliceSource(t, lines(`{"id":"w1","key":"b","ops":[`+c.ops+`]}`), 1, nil)
			run(t, sink, dlq, src, testConfig())
			if !sink.tripped {
				t.Fatal("no in-doubt failure was injected")
			}
			if len(dlq.letters) > 0 {
				t.Fatalf("dead-lettered: %s %s", dlq.letters[0].WriteID, dlq.letters[0].Error)
			}
			conformance.CheckExport(t, sink.Graph, c.want)
		})
	}
}
