package sparql

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Version guards (docs/DESIGN.md, "Versions"). What versioned writes leave
// on an element or a (from, label) group is one triple in the store's
// graph: <base/version/KEY> or <base/group/FROM%00LABEL> graft-version
// "JSON" — a resource no vertex or edge read matches (they look for a type
// or an edge's endpoints). A batch with a versioned write loads those of
// what it touches, and the edges of the vertices it deletes (an older
// delete leaves the newer ones), applies with the guards, and writes back
// the triples that changed; a batch without one reads none.

type storedVersions struct {
	Up    int64            `json:"up"`
	Floor int64            `json:"floor"`
	Props map[string]int64 `json:"props,omitempty"`
}

type storedGroup struct {
	Newest int64            `json:"newest"`
	Named  map[string]int64 `json:"named,omitempty"`
}

func (s *Store) versionIRI(key string) string {
	v, _ := IRI(s.t.Base + "version/" + escape(key))
	return v
}

func (s *Store) groupIRI(k [2]string) string {
	v, _ := IRI(s.t.Base + "group/" + escape(k[0]+"\x00"+k[1]))
	return v
}

// loadVersions loads into l the versions the batch needs
// (semantics.VersionKeys).
func (s *Store) loadVersions(ctx context.Context, ws []*graft.Write, t semantics.Touched, edges map[string]*graft.Edge, l *semantics.Loaded) error {
	loaded := map[string]graft.Edge{}
	for k, e := range edges {
		loaded[k] = *e
	}
	keys, groups := semantics.VersionKeys(ws, t, loaded)
	byIRI := map[string]func(lex string) error{}
	for _, k := range keys {
		byIRI[s.versionIRI(k)] = func(lex string) error {
			var v storedVersions
			if err := json.Unmarshal([]byte(lex), &v); err != nil {
				return err
			}
			l.Versions[k] = semantics.Versions{Up: v.Up, Floor: v.Floor, Props: v.Props}
			return nil
		}
	}
	for _, k := range groups {
		byIRI[s.groupIRI(k)] = func(lex string) error {
			var g storedGroup
			if err := json.Unmarshal([]byte(lex), &g); err != nil {
				return err
			}
			l.Groups[k] = semantics.Group{Newest: g.Newest, Named: g.Named}
			return nil
		}
	}
	if len(byIRI) == 0 {
		return nil
	}
	rows, err := s.rowsOf(ctx, sortedKeys(byIRI), "FILTER(?p = "+s.pVersion+") ")
	if err != nil {
		return err
	}
	for _, r := range rows {
		iri := "<" + r["s"].Value + ">"
		load := byIRI[iri]
		if load == nil {
			continue
		}
		if err := load(r["lex"].Value); err != nil {
			return graft.NewError(graft.Fatal, fmt.Errorf("%s: stored versions of %s do not decode: %w", s.cfg.Endpoint, iri, err))
		}
	}
	return nil
}

// versionTriples returns the updates that clear the version triples of the
// versions and groups that changed (Graph.VersionChanges) (by pattern: whatever is stored there
// goes), and the triples to insert.
func (s *Store) versionTriples(versions map[string]semantics.Versions, groups map[[2]string]semantics.Group) (clear, ins []string) {
	var iris []string
	put := func(iri string, v any) {
		b, _ := json.Marshal(v) // integers and maps of them always encode
		iris = append(iris, iri)
		ins = append(ins, iri+" "+s.pVersion+" "+quote(string(b))+" .")
	}
	for k, v := range versions {
		put(s.versionIRI(k), storedVersions{Up: v.Up, Floor: v.Floor, Props: v.Props})
	}
	for k, g := range groups {
		put(s.groupIRI(k), storedGroup{Newest: g.Newest, Named: g.Named})
	}
	sort.Strings(iris)
	for i := 0; i < len(iris); i += dataChunk {
		clear = append(clear, "DELETE { GRAPH "+s.graph+" { ?x "+s.pVersion+" ?o } } WHERE { GRAPH "+s.graph+" { VALUES ?x { "+
			strings.Join(iris[i:min(i+dataChunk, len(iris))], " ")+" } ?x "+s.pVersion+" ?o } }")
	}
	return clear, ins
}
