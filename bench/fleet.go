// Package bench holds Graft's workloads and benchmarks. Fleet generates the
// fleet workload of docs/DESIGN.md: organizations with property vertices, devices
// owned by organizations, software per organization, and full-state
// "device software updated" events written with replaceEdges.
package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/graftdb/graft"
)

// FleetConfig shapes the fleet workload.
type FleetConfig struct {
	Orgs              int     // organizations
	DevicesPerOrg     int     // devices per organization
	SoftwarePerOrg    int     // software titles per organization
	SoftwarePerDevice int     // software entries in a device update
	Skew              float64 // Zipf s over organizations for updates (> 1), 0 for uniform
	Burst             int     // consecutive updates of one organization
	Seed              uint64
}

// DefaultFleet is a small fleet workload: 100 organizations, 10 devices each.
func DefaultFleet() FleetConfig {
	return FleetConfig{Orgs: 100, DevicesPerOrg: 10, SoftwarePerOrg: 100, SoftwarePerDevice: 20, Skew: 1.1, Burst: 8, Seed: 1}
}

// Fleet yields writes of the fleet workload: first every organization (with
// its property vertices) and its devices, then device software updates.
type Fleet struct {
	cfg   FleetConfig
	rng   *rand.Rand
	zipf  *rand.Zipf
	n     int
	org   int // next organization to create, then current burst's
	dev   int
	burst int
	setup bool
}

// NewFleet returns a generator.
func NewFleet(cfg FleetConfig) *Fleet {
	s := &Fleet{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}
	if cfg.Skew > 1 && cfg.Orgs > 1 {
		s.zipf = rand.NewZipf(s.rng, cfg.Skew, 1, uint64(cfg.Orgs-1))
	}
	s.setup = true
	return s
}

func orgID(o int) string            { return fmt.Sprintf("org:%06d", o) }
func devID(o, d int) string         { return fmt.Sprintf("dev:%06d:%04d", o, d) }
func swID(o, s int) string          { return fmt.Sprintf("sw:%06d:%05d", o, s) }
func propID(o int, p string) string { return fmt.Sprintf("prop:%06d:%s", o, p) }

// Next returns the next write.
func (s *Fleet) Next() *graft.Write {
	s.n++
	id := fmt.Sprintf("evt-%d", s.n)
	if s.setup {
		if s.dev == 0 {
			w := s.orgWrite(s.org, id)
			s.dev = 1
			return w
		}
		o, d := s.org, s.dev-1
		w := &graft.Write{Key: orgID(o), ID: id, Ops: []graft.Op{
			{Kind: graft.UpsertVertex, ID: devID(o, d), Label: "device", Props: graft.Props{"serial": graft.String(fmt.Sprintf("SN%06d%04d", o, d))}},
			{Kind: graft.UpsertEdge, Label: "owns", From: orgID(o), To: devID(o, d)},
		}}
		s.dev++
		if s.dev > s.cfg.DevicesPerOrg {
			s.org, s.dev = s.org+1, 0
			if s.org >= s.cfg.Orgs {
				s.setup = false
			}
		}
		return w
	}
	if s.burst == 0 {
		s.burst = max(s.cfg.Burst, 1)
		if s.zipf != nil {
			s.org = int(s.zipf.Uint64())
		} else {
			s.org = s.rng.IntN(s.cfg.Orgs)
		}
	}
	s.burst--
	return s.update(s.org, id)
}

func (s *Fleet) orgWrite(o int, id string) *graft.Write {
	name := fmt.Sprintf("org %d", o)
	tier := int64(o % 5)
	w := &graft.Write{Key: orgID(o), ID: id, Ops: []graft.Op{
		{Kind: graft.UpsertVertex, ID: orgID(o), Label: "organization", Props: graft.Props{"name": graft.String(name), "tier": graft.Int(tier)}},
	}}
	for _, p := range []struct {
		name, typ string
		v         graft.Value
	}{{"name", "string", graft.String(name)}, {"tier", "int", graft.Int(tier)}, {"region", "string", graft.String([]string{"eu", "us", "ap"}[o%3])}} {
		pid := propID(o, p.name)
		w.Ops = append(w.Ops,
			graft.Op{Kind: graft.UpsertVertex, ID: pid, Label: "property", Props: graft.Props{"name": graft.String(p.name), "type": graft.String(p.typ), "value": p.v}},
			graft.Op{Kind: graft.UpsertEdge, Label: "hasProperty", From: orgID(o), To: pid})
	}
	return w
}

// update is a DeviceSoftwareUpdated event: the device's full software list.
func (s *Fleet) update(o int, id string) *graft.Write {
	d := s.rng.IntN(max(s.cfg.DevicesPerOrg, 1))
	n := s.cfg.SoftwarePerDevice
	w := &graft.Write{Key: orgID(o), ID: id, Ops: make([]graft.Op, 0, n+1)}
	targets := make([]string, 0, n)
	seen := map[int]bool{}
	for len(targets) < n && len(seen) < s.cfg.SoftwarePerOrg {
		// Devices of an organization share most of their software.
		k := int(s.rng.ExpFloat64() * float64(s.cfg.SoftwarePerOrg) / 4)
		if k >= s.cfg.SoftwarePerOrg || seen[k] {
			continue
		}
		seen[k] = true
		sid := swID(o, k)
		targets = append(targets, sid)
		w.Ops = append(w.Ops, graft.Op{Kind: graft.UpsertVertex, ID: sid, Label: "software",
			Props: graft.Props{"name": graft.String(fmt.Sprintf("app-%d", k)), "version": graft.String(fmt.Sprintf("%d.%d", k%7, k%3))}})
	}
	w.Ops = append(w.Ops, graft.Op{Kind: graft.ReplaceEdges, From: devID(o, d), Label: "installed", Targets: targets})
	return w
}

// FleetWrites returns the first n writes of the default fleet workload and
// their op count (for the sinks' benchmarks).
func FleetWrites(n int) ([]*graft.Write, int) {
	g := NewFleet(DefaultFleet())
	ws := make([]*graft.Write, 0, n)
	ops := 0
	for range n {
		w := g.Next()
		ws = append(ws, w)
		ops += len(w.Ops)
	}
	return ws, ops
}
