package graft

import "context"

// SharedCache is a write cache shared by every graft process writing one
// graph (cache/redis). The in-process cache stays in front of it: each
// batch first asks the shared cache which of its elements changed since the
// process last saw them (one round trip), so a fact another process made
// stale is never used.
//
// The protocol that keeps shared facts true (docs/cache.md): a batch marks
// the elements it will write (Begin) before applying, and publishes what it
// established after its commit (Publish), or forgets them after a failure
// (Abort). A fact is published only by a batch that overlapped no other
// batch on that element; everything else deletes it.
type SharedCache interface {
	// Load returns the state of keys given the versions the process holds
	// (have[i], 0 for none): Same when unchanged, else the shared fact (nil
	// when nothing is known). Also the generation of edge groups and the
	// cache's epoch: a new epoch means every fact held locally is void.
	Load(ctx context.Context, keys []string, have []uint64) (SharedLoad, error)
	// Begin marks keys as being written; deletes says the batch deletes a
	// vertex (which voids every edge group). planned[i] is the version of
	// the fact the batch was planned with for keys[i] (0: none): if another
	// batch began writing the key since that fact, the key is not Alone
	// (the batch's facts build on a fact that may be stale).
	Begin(ctx context.Context, keys []string, planned []uint64, deletes bool) (SharedTicket, error)
	// Publish stores the facts (facts[i] for the ticket's keys[i], nil:
	// unknown) established by the committed batch.
	Publish(ctx context.Context, t SharedTicket, facts []*SharedFact) error
	// Abort forgets the ticket's keys: the batch failed or may have.
	Abort(ctx context.Context, t SharedTicket) error
	// Recover starts a new epoch: called when the cache is reachable again
	// after an outage, during which this process wrote without marking.
	Recover(ctx context.Context) error
}

// SharedLoad is the answer of SharedCache.Load.
type SharedLoad struct {
	Epoch, Gen uint64
	Same       []bool
	Facts      []*SharedFact
}

// SharedTicket is what Begin returns, for Publish or Abort.
type SharedTicket struct {
	Keys     []string
	Versions []uint64 // each key's version, taken by Begin
	Alone    []bool   // no other batch was writing the key when Begin ran, nor began since the fact it was planned with
	Deletes  bool
	Epoch    uint64 // of the Load the batch was planned with
}

// SharedFact is what is known of an element: a vertex (its key starts with
// "v\x00") or an edge group ("g\x00").
type SharedFact struct {
	Version uint64
	Label   string // vertex
	Props   Props  // vertex: at least these values
	Gen     uint64 // group: the generation it belongs to
	Exact   bool   // group: Targets is every target
	Targets map[string]Props
}

// IsVertexCacheKey reports whether a cache key names a vertex (else an edge group).
func IsVertexCacheKey(k string) bool { return len(k) > 1 && k[0] == 'v' && k[1] == 0 }
