package sparql

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/graftdb/graft"
)

func (s *Store) checkFences(ctx context.Context, keys []string, token uint64) error {
	var vals []string
	for _, k := range keys {
		vals = append(vals, s.fenceIRI(k))
	}
	rows, err := s.query(ctx, "SELECT ?f (str(?t) AS ?v) WHERE { GRAPH "+s.graph+" { VALUES ?f { "+strings.Join(vals, " ")+" } ?f "+s.pToken+" ?t } }")
	if err != nil {
		return err
	}
	for _, r := range rows {
		t, err := strconv.ParseUint(r["v"].Value, 10, 64)
		if err != nil {
			return graft.NewError(graft.Permanent, fmt.Errorf("fence token %q: %w", r["v"].Value, err))
		}
		if t > token {
			key, _ := s.t.unmint(r["f"].Value, "fence/")
			return graft.NewError(graft.Conflict, fmt.Errorf("key %q: token %d < %d: %w", key, token, t, graft.ErrFenced))
		}
	}
	return nil
}

// loadVertices reads vertices by IRI: rdf:type and properties.
func (s *Store) loadVertices(ctx context.Context, iris []string) ([]*graft.Vertex, error) {
	if len(iris) == 0 {
		return nil, nil
	}
	sort.Strings(iris)
	return s.readVertices(ctx, "VALUES ?s { "+strings.Join(iris, " ")+" } ?s ?p ?o")
}

// readVertices runs a pattern binding ?s ?p ?o over vertices.
func (s *Store) readVertices(ctx context.Context, pattern string) ([]*graft.Vertex, error) {
	rows, err := s.query(ctx, "SELECT ?s ?p ?o (str(?o) AS ?lex) (datatype(?o) AS ?dt) WHERE { GRAPH "+s.graph+" { "+pattern+" } }")
	if err != nil {
		return nil, err
	}
	byIRI := map[string]*graft.Vertex{}
	var order []string
	for _, r := range rows {
		iri := r["s"].Value
		id, err := s.t.VertexID(iri)
		if err != nil {
			continue // not a vertex of this base
		}
		v := byIRI[iri]
		if v == nil {
			v = &graft.Vertex{ID: id, Props: graft.Props{}}
			byIRI[iri] = v
			order = append(order, iri)
		}
		switch p := r["p"].Value; {
		case p == RDFType:
			if v.Label, err = s.t.LabelOf(r["o"].Value); err != nil {
				return nil, graft.NewError(graft.Permanent, err)
			}
		case strings.HasPrefix(p, s.t.Base+"p/"):
			if err := s.prop(v.Props, r); err != nil {
				return nil, err
			}
		}
	}
	var out []*graft.Vertex
	for _, iri := range order {
		if v := byIRI[iri]; v.Label != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// prop adds a property row (?p, ?lex, ?dt) to props. The lexical form is
// read with str(): Virtuoso's JSON shows doubles with 6 digits.
func (s *Store) prop(props graft.Props, r map[string]Term) error {
	k, err := s.t.PropKey(r["p"].Value)
	if err != nil {
		return graft.NewError(graft.Permanent, err)
	}
	val, err := s.t.Value(Term{Type: "literal", Value: r["lex"].Value, Datatype: r["dt"].Value})
	if err != nil {
		return graft.NewError(graft.Permanent, fmt.Errorf("property %q: %w", k, err))
	}
	props[k] = val
	return nil
}

// loadEdges runs a pattern binding ?s (an edge resource) ?p ?o.
func (s *Store) loadEdges(ctx context.Context, pattern string) ([]*graft.Edge, error) {
	rows, err := s.query(ctx, "SELECT ?s ?p ?o (str(?o) AS ?lex) (datatype(?o) AS ?dt) WHERE { GRAPH "+s.graph+" { "+pattern+" } }")
	if err != nil {
		return nil, err
	}
	byIRI := map[string]*graft.Edge{}
	var order []string
	eidPrefix := s.t.Base + "eid/"
	for _, r := range rows {
		iri := r["s"].Value
		e := byIRI[iri]
		if e == nil {
			e = &graft.Edge{Props: graft.Props{}}
			if rest, ok := strings.CutPrefix(iri, eidPrefix); ok {
				if e.ID, err = url.PathUnescape(rest); err != nil {
					return nil, graft.NewError(graft.Permanent, err)
				}
			}
			byIRI[iri] = e
			order = append(order, iri)
		}
		switch p := "<" + r["p"].Value + ">"; {
		case p == s.pFrom:
			e.From, err = s.t.VertexID(r["o"].Value)
		case p == s.pTo:
			e.To, err = s.t.VertexID(r["o"].Value)
		case p == s.pLabel:
			e.Label = r["o"].Value
		case strings.HasPrefix(p, "<"+s.t.Base+"p/"):
			err = s.prop(e.Props, r)
		}
		if err != nil {
			return nil, graft.NewError(graft.Permanent, err)
		}
	}
	var out []*graft.Edge
	for _, iri := range order {
		if e := byIRI[iri]; e.From != "" && e.To != "" && e.Label != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

// Vertex implements graft.Reader.
func (s *Store) Vertex(ctx context.Context, id string) (*graft.Vertex, error) {
	vs, err := s.loadVertices(ctx, []string{s.vertexIRI(id)})
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, graft.ErrNotFound
	}
	return vs[0], nil
}

// Edges implements graft.Reader.
func (s *Store) Edges(ctx context.Context, id string, dir graft.Direction, label string) ([]graft.Edge, error) {
	v := s.vertexIRI(id)
	var pattern string
	switch dir {
	case graft.Out:
		pattern = "?s " + s.pFrom + " " + v + " . ?s ?p ?o"
	case graft.In:
		pattern = "?s " + s.pTo + " " + v + " . ?s ?p ?o"
	default:
		pattern = "{ ?s " + s.pFrom + " " + v + " } UNION { ?s " + s.pTo + " " + v + " } ?s ?p ?o"
	}
	es, err := s.loadEdges(ctx, pattern)
	if err != nil {
		return nil, err
	}
	out := []graft.Edge{}
	for _, e := range es {
		if label == "" || e.Label == label {
			out = append(out, *e)
		}
	}
	return out, nil
}

// Export implements graft.Reader: every vertex, then every edge.
func (s *Store) Export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	vs, err := s.readVertices(ctx, "?s a ?l . ?s ?p ?o")
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := vf(v); err != nil {
			return err
		}
	}
	es, err := s.loadEdges(ctx, "?s "+s.pFrom+" ?f . ?s ?p ?o")
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := ef(e); err != nil {
			return err
		}
	}
	return nil
}
