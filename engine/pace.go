package engine

import (
	"sync"

	"github.com/graftdb/graft"
)

// pacer is the per-partition in-flight bound (graft.Pauser). A partition
// that holds MaxInflightPerPartition records read and not yet done is
// paused at the source, so that a revoke or a handoff drains at most that
// many records of it instead of everything the global bound let in; it is
// resumed at half. Records are counted when the reader fetches them, not
// when the scheduler admits them: what lies between the two would
// otherwise pass the bound. A partition with a parked write is never
// paused: the vertex the write waits for may be in the partition's next
// records (invariant 12). While a partition is paused, a parked write is
// not given up on its own (its endpoint may be unread: endpointOnItsWay).
type pacer struct {
	mu     sync.Mutex
	src    graft.Pauser // nil: no bound
	bound  int
	parts  map[string]*pace
	paused int // partitions paused now
	stats  *Stats
}

type pace struct {
	open, parked int
	paused       bool
}

func newPacer(src graft.Source, bound int, stats *Stats) *pacer {
	p := &pacer{bound: bound, parts: map[string]*pace{}, stats: stats}
	if pa, ok := src.(graft.Pauser); ok && bound > 0 {
		p.src = pa
	}
	return p
}

func (p *pacer) of(partition string) *pace {
	s := p.parts[partition]
	if s == nil {
		s = &pace{}
		p.parts[partition] = s
	}
	return s
}

// fetched counts the records of a fetch (the reader), under one lock.
func (p *pacer) fetched(recs []graft.Record) {
	if p.src == nil || len(recs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range recs {
		partition := recs[i].Pos.Partition
		s := p.of(partition)
		s.open++
		if !s.paused && s.parked == 0 && s.open >= p.bound {
			s.paused = true
			p.paused++
			p.stats.Paused.Add(1)
			p.src.Pause(partition)
		}
	}
}

// done counts a record of partition done: committed, dead-lettered or
// dropped (the scheduler).
func (p *pacer) done(partition string) {
	if p.src == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.of(partition)
	s.open--
	if s.paused && s.open <= p.bound/2 {
		p.resume(partition, s)
	}
	if s.open == 0 && s.parked == 0 && !s.paused {
		delete(p.parts, partition)
	}
}

// parkedIn counts a write of partition parked (+1) or no longer parked
// (-1) (the scheduler).
func (p *pacer) parkedIn(partition string, d int) {
	if p.src == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.of(partition)
	s.parked += d
	if s.parked > 0 && s.paused {
		p.resume(partition, s)
	}
}

// lost forgets the pause of a partition lost to another instance: the
// source forgets it too.
func (p *pacer) lost(partition string) {
	if p.src == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.parts[partition]; s != nil && s.paused {
		s.paused = false
		p.paused--
	}
}

// holding reports whether a partition is paused: the reader holds back
// records that may release parked writes.
func (p *pacer) holding() bool {
	if p.src == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused > 0
}

func (p *pacer) resume(partition string, s *pace) {
	s.paused = false
	p.paused--
	p.src.Resume(partition)
}
