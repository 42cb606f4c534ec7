package semantics

import (
	"maps"
	"sort"
	"strings"

	"github.com/graftdb/graft"
)

// Loaded is what a diff-based sink read before applying a batch in memory:
// the elements (edges by EdgeKey) and, for a batch with versioned writes,
// their versions (by the keys VersionKeys returns) and groups.
type Loaded struct {
	Vertices map[string]graft.Vertex
	Edges    map[string]graft.Edge
	Versions map[string]Versions
	Groups   map[[2]string]Group
}

// NewLoaded returns an empty Loaded.
func NewLoaded() Loaded {
	return Loaded{Vertices: map[string]graft.Vertex{}, Edges: map[string]graft.Edge{}, Versions: map[string]Versions{}, Groups: map[[2]string]Group{}}
}

// Changes is what a sink writes after applying a batch in memory.
type Changes struct {
	PutVertices    []graft.Vertex // new or changed (label, props)
	DeleteVertices []string       // gone, or deleted and created again (their edges in the store go too)
	PutEdges       []graft.Edge
	DeleteEdges    []graft.Edge
	PutVersions    map[string]Versions // by key (RowOf gives its columns); VersionChanges
	PutGroups      map[[2]string]Group
}

// Changes returns what differs between the graph and what was loaded;
// deleted are the loaded vertices the batch deleted (ApplyAttributed),
// which are deleted and put again, with their edges, even if they are back
// as they were.
func (g *Graph) Changes(before Loaded, deleted map[string]bool) Changes {
	var c Changes
	afterV, afterE := g.Snapshot()
	final := make(map[string]bool, len(afterV))
	for _, v := range afterV {
		final[v.ID] = true
		old, had := before.Vertices[v.ID]
		if !had || deleted[v.ID] || old.Label != v.Label || !old.Props.Equal(v.Props) {
			c.PutVertices = append(c.PutVertices, v)
		}
	}
	for id := range before.Vertices {
		if !final[id] || deleted[id] {
			c.DeleteVertices = append(c.DeleteVertices, id)
		}
	}
	sort.Strings(c.DeleteVertices)
	finalE := make(map[string]bool, len(afterE))
	for _, e := range afterE {
		k := EdgeKey(&e)
		finalE[k] = true
		old, had := before.Edges[k]
		if !had || deleted[e.From] || deleted[e.To] || !old.Props.Equal(e.Props) {
			c.PutEdges = append(c.PutEdges, e)
		}
	}
	for k, e := range before.Edges {
		if !finalE[k] {
			c.DeleteEdges = append(c.DeleteEdges, e)
		}
	}
	SortEdges(c.DeleteEdges)
	c.PutVersions, c.PutGroups = g.VersionChanges(before)
	return c
}

// VersionChanges returns the versions and groups that differ from what
// was loaded (nil maps when none).
func (g *Graph) VersionChanges(before Loaded) (versions map[string]Versions, groups map[[2]string]Group) {
	for k, v := range g.allVersions() {
		if old, ok := before.Versions[k]; ok && old.Up == v.Up && old.Floor == v.Floor && maps.Equal(old.Props, v.Props) {
			continue
		}
		if versions == nil {
			versions = map[string]Versions{}
		}
		versions[k] = v
	}
	for k, gr := range g.allGroups() {
		if old, ok := before.Groups[k]; ok && old.Newest == gr.Newest && maps.Equal(old.Named, gr.Named) {
			continue
		}
		if groups == nil {
			groups = map[[2]string]Group{}
		}
		groups[k] = gr
	}
	return versions, groups
}

// Versioned reports whether a write of the batch has a version: only then
// does a sink read and write versions.
func Versioned(ws []*graft.Write) bool {
	for _, w := range ws {
		if w.Version != 0 {
			return true
		}
	}
	return false
}

// DeletedByVersioned returns the vertices versioned writes delete: a sink
// loads their edges, which an older delete leaves when newer writes made
// them.
func DeletedByVersioned(ws []*graft.Write) []string {
	var ids []string
	for _, w := range ws {
		if w.Version == 0 {
			continue
		}
		for i := range w.Ops {
			if w.Ops[i].Kind == graft.DeleteVertex {
				ids = append(ids, w.Ops[i].ID)
			}
		}
	}
	return ids
}

// VersionKeys returns the keys of the versions the batch ws needs (t is
// what it touches): of every vertex it names, every edge it addresses,
// every edge its replaceEdges name as targets (a tombstone may forbid
// creating one), every edge that was loaded, and the groups its edge ops
// fall in.
func VersionKeys(ws []*graft.Write, t Touched, edges map[string]graft.Edge) (keys []string, groups [][2]string) {
	set := map[string]bool{}
	for _, w := range ws {
		for i := range w.Ops {
			if op := &w.Ops[i]; op.Kind == graft.ReplaceEdges {
				for _, to := range op.Targets {
					set[EdgeKey(&graft.Edge{From: op.From, Label: op.Label, To: to})] = true
				}
			}
		}
	}
	for id := range t.Vertices {
		set[vertexMeta(id)] = true
	}
	for r := range t.Natural {
		set[EdgeKey(&graft.Edge{From: r[0], Label: r[1], To: r[2]})] = true
	}
	for id := range t.IDs {
		set[EdgeKey(&graft.Edge{ID: id})] = true
	}
	for _, e := range edges {
		set[EdgeKey(&e)] = true
	}
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	gs := map[[2]string]bool{}
	for k := range t.Groups {
		gs[k] = true
	}
	for r := range t.Natural {
		gs[[2]string{r[0], r[1]}] = true
	}
	for k := range gs {
		groups = append(groups, k)
	}
	sort.Slice(groups, func(i, j int) bool {
		return groups[i][0] < groups[j][0] || groups[i][0] == groups[j][0] && groups[i][1] < groups[j][1]
	})
	return keys, groups
}

// RowOf returns a versions key as four columns: kind v (a = vertex id),
// n (a, b, c = from, label, to) or i (a = edge id).
func RowOf(key string) (kind, a, b, c string) {
	parts := strings.Split(key, "\x00")
	if parts[0] == "n" {
		return "n", parts[2], parts[1], parts[3]
	}
	return parts[0], parts[1], "", ""
}

// KeyOf is the inverse of RowOf.
func KeyOf(kind, a, b, c string) string {
	switch kind {
	case "v":
		return vertexMeta(a)
	case "n":
		return EdgeKey(&graft.Edge{Label: b, From: a, To: c})
	default:
		return EdgeKey(&graft.Edge{ID: a})
	}
}

// Load puts what was loaded into the graph.
func (g *Graph) Load(l Loaded) {
	for _, v := range l.Vertices {
		g.Put(v)
	}
	for _, e := range l.Edges {
		g.PutEdge(e)
	}
	for k, v := range l.Versions {
		g.putVersions(k, v)
	}
	for k, gr := range l.Groups {
		g.putGroup(k[0], k[1], gr)
	}
}
