package sparql

import (
	"context"
	"errors"
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
	rows, err := s.query(ctx, "SELECT ?f (str(?t) AS ?v) WHERE { GRAPH "+s.graph+" { VALUES ?f { "+strings.Join(vals, " ")+" } ?f "+s.pToken+" ?t } }", 0)
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

// Reads never take a result the store may have cut short (errCapped).
// Elements named by IRI (a batch's touched subgraph) are read a chunk of
// subjects at a time, halved when the store caps a read (rowsOf); elements
// found by a pattern (export, a vertex's edges, a replaceEdges group) are
// scanned a page of rows at a time in the order of their IRIs (scan).

// pageSize is the most subjects one read by name asks for (Store.perRead:
// halved each time the store caps a read, for the store's lifetime), and
// pageRows the most rows one scan asks for (Store.page: lowered to the
// store's cap when it has one).
const (
	pageSize = 1000
	pageRows = 5000
)

// rowsOf returns the triples (?s ?p ?o, with ?o's lexical form and
// datatype) of the subjects, all of them, whatever the store caps; filter,
// when not empty, is a FILTER on ?p.
func (s *Store) rowsOf(ctx context.Context, subjects []string, filter string) ([]map[string]Term, error) {
	var out []map[string]Term
	for len(subjects) > 0 {
		n := min(len(subjects), int(s.perRead.Load()))
		for {
			rows, err := s.query(ctx, "SELECT ?s ?p ?o (str(?o) AS ?lex) (datatype(?o) AS ?dt) WHERE { GRAPH "+s.graph+
				" { VALUES ?s { "+strings.Join(subjects[:n], " ")+" } ?s ?p ?o "+filter+"} }", 0)
			var capped errCapped
			if errors.As(err, &capped) {
				if n == 1 {
					return nil, graft.NewError(graft.TooLarge, fmt.Errorf("%s: %s has more triples than the store returns at once: %w", s.cfg.Endpoint, subjects[0], err))
				}
				n /= 2
				s.perRead.Store(int64(n)) // the next reads start there
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, rows...)
			break
		}
		subjects = subjects[n:]
	}
	return out, nil
}

// scan hands over the triples of the subjects pattern binds to ?s (those
// whose predicate passes filter, a FILTER on ?p or empty), in the order of
// the subjects' IRIs, a page of rows at a time, every subject's triples in
// one page (keyset paging on STR(?s): no OFFSET, which Virtuoso refuses
// past 10,000 sorted rows). A page the store caps is asked again at the
// cap (Store.page remembers it).
func (s *Store) scan(ctx context.Context, pattern, filter string, each func([]map[string]Term) error) error {
	last := ""
	for {
		page := int(s.page.Load())
		after := ""
		if last != "" {
			after = "FILTER(STR(?s) > " + quote(last) + ") "
		}
		rows, err := s.query(ctx, "SELECT ?s ?p ?o (str(?o) AS ?lex) (datatype(?o) AS ?dt) WHERE { GRAPH "+s.graph+" { "+pattern+
			" . ?s ?p ?o "+filter+after+"} } ORDER BY STR(?s) LIMIT "+strconv.Itoa(page), page)
		var capped errCapped
		if errors.As(err, &capped) {
			s.page.Store(int64(capped.max)) // within the cap: not capped any more
			continue
		}
		if err != nil {
			return err
		}
		if len(rows) < page { // the rest, whole
			if len(rows) == 0 {
				return nil
			}
			return each(rows)
		}
		// A full page: its last subject may go on in the next one.
		cut, lastS := len(rows), rows[len(rows)-1]["s"].Value
		for cut > 0 && rows[cut-1]["s"].Value == lastS {
			cut--
		}
		if cut == 0 {
			return graft.NewError(graft.TooLarge, fmt.Errorf("%s: <%s> has more than %d triples, more than one read returns", s.cfg.Endpoint, lastS, page))
		}
		if err := each(rows[:cut]); err != nil {
			return err
		}
		last = rows[cut-1]["s"].Value
	}
}

// loadVertices reads vertices by IRI: rdf:type and properties.
func (s *Store) loadVertices(ctx context.Context, iris []string) ([]*graft.Vertex, error) {
	if len(iris) == 0 {
		return nil, nil
	}
	sort.Strings(iris)
	rows, err := s.rowsOf(ctx, iris, s.vertexFilter())
	if err != nil {
		return nil, err
	}
	return s.verticesOf(rows)
}

// vertexFilter keeps a vertex's type and properties, not the triples of
// its natural edges (one per edge: a hub has as many as it has edges).
func (s *Store) vertexFilter() string {
	return "FILTER(?p = <" + RDFType + "> || STRSTARTS(STR(?p), " + quote(s.t.Base+"p/") + ")) "
}

// readVertices reads the vertices pattern binds to ?s, a page at a time.
func (s *Store) readVertices(ctx context.Context, pattern string, each func(*graft.Vertex) error) error {
	return s.scan(ctx, pattern, s.vertexFilter(), assembled(s.verticesOf, each))
}

// assembled turns a page of rows into elements with of, and hands each on.
func assembled[E any](of func([]map[string]Term) ([]*E, error), each func(*E) error) func([]map[string]Term) error {
	return func(rows []map[string]Term) error {
		es, err := of(rows)
		if err != nil {
			return err
		}
		for _, e := range es {
			if err := each(e); err != nil {
				return err
			}
		}
		return nil
	}
}

// verticesOf assembles vertices from their triples.
func (s *Store) verticesOf(rows []map[string]Term) ([]*graft.Vertex, error) {
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

// loadEdges reads the edge resources pattern binds to ?s, a page at a
// time.
func (s *Store) loadEdges(ctx context.Context, pattern string, each func(*graft.Edge) error) error {
	return s.scan(ctx, pattern, "", assembled(s.edgesOf, each))
}

// edgesOf assembles edges from the triples of their resources.
func (s *Store) edgesOf(rows []map[string]Term) ([]*graft.Edge, error) {
	byIRI := map[string]*graft.Edge{}
	var order []string
	eidPrefix := s.t.Base + "eid/"
	var err error
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
		pattern = "?s " + s.pFrom + " " + v
	case graft.In:
		pattern = "?s " + s.pTo + " " + v
	default:
		pattern = "{ ?s " + s.pFrom + " " + v + " } UNION { ?s " + s.pTo + " " + v + " }"
	}
	if label != "" {
		pattern += " . ?s " + s.pLabel + " " + quote(label)
	}
	out := []graft.Edge{}
	err := s.loadEdges(ctx, pattern, func(e *graft.Edge) error {
		if label == "" || e.Label == label {
			out = append(out, *e)
		}
		return nil
	})
	return out, err
}

// Export implements graft.Reader: every vertex, then every edge, a page of
// subjects at a time (bounded memory, whatever the graph's size).
func (s *Store) Export(ctx context.Context, vf func(*graft.Vertex) error, ef func(*graft.Edge) error) error {
	if err := s.readVertices(ctx, "?s a ?l", vf); err != nil {
		return err
	}
	return s.loadEdges(ctx, "?s "+s.pFrom+" ?f", ef)
}
