// Package sparql is the SPARQL sink: a property graph stored as RDF in one
// named graph of a SPARQL 1.1 store (Virtuoso, and any store that speaks the
// protocol). A batch is one update: the subgraph the batch touches is read,
// the writes applied to it in memory (package semantics), and the difference
// written (store.go); reads are SELECTs (read.go); the endpoint and
// its URL (url.go, http.go, iam.go); terms (rdf.go). docs/sparql.md
// describes the mapping and what Virtuoso does to it.
package sparql

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Store is the SPARQL sink and its Reader.
type Store struct {
	cfg    Config
	client *http.Client
	iam    *sigv4 // nil without iam=true
	graph  string // <graph>
	t      Terms
	// predicates of edge resources
	pFrom, pTo, pLabel, pToken, pVersion string
	// perRead: subjects per read by name; page: rows per scan (read.go)
	perRead, page atomic.Int64
	// time spent in Apply's phases, for the benchmarks (Phases)
	readNanos, computeNanos, updateNanos atomic.Int64
}

// Phases returns the time Apply has spent so far reading what batches
// touch, computing their difference in memory, and sending the updates.
func (s *Store) Phases() (read, compute, update time.Duration) {
	return time.Duration(s.readNanos.Load()), time.Duration(s.computeNanos.Load()), time.Duration(s.updateNanos.Load())
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// Open returns the store; Ping says whether the endpoint answers.
func Open(cfg Config) (*Store, error) {
	s := &Store{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, t: cfg.Terms}
	s.perRead.Store(pageSize)
	s.page.Store(pageRows)
	if cfg.IAM {
		var err error
		if s.iam, err = newSigV4(context.Background(), cfg.Endpoint, cfg.Region); err != nil {
			return nil, graft.NewError(graft.Fatal, fmt.Errorf("sink %s: %w", cfg.Endpoint, err))
		}
	}
	s.graph, _ = IRI(cfg.Graph)
	s.pFrom, _ = IRI(cfg.Terms.Base + "edge-from")
	s.pTo, _ = IRI(cfg.Terms.Base + "edge-to")
	s.pLabel, _ = IRI(cfg.Terms.Base + "edge-label")
	s.pToken, _ = IRI(cfg.Terms.Base + "fence-token")
	s.pVersion, _ = IRI(cfg.Terms.Base + "graft-version")
	return s, nil
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// Endpoint names the server and graph.
func (s *Store) Endpoint() string { return s.cfg.Endpoint + " graph " + s.cfg.Graph }

// Limits implements graft.Sink.
func (s *Store) Limits() graft.SinkLimits {
	return graft.SinkLimits{MaxWrites: s.cfg.MaxWrites, MaxUnits: s.cfg.MaxUnits, MaxBytes: 8 << 20, Concurrency: s.cfg.Concurrency}
}

// Ping implements graft.Sink.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.query(ctx, "ASK { }", 0)
	return err
}

// Close implements graft.Sink.
func (s *Store) Close() error { return nil }

// Reset empties the graph (graft bench, tests).
func (s *Store) Reset(ctx context.Context) error {
	return s.update(ctx, "CLEAR SILENT GRAPH "+s.graph)
}

// The IRIs of elements.

func (s *Store) vertexIRI(id string) string { v, _ := IRI(s.t.Vertex(id)); return v }

// edgeIRI is the resource holding an edge's endpoints, label and
// properties: by (label, from, to) for a natural edge, by id otherwise.
// Escaped parts never contain '/', so the natural form is unambiguous.
func (s *Store) edgeIRI(id, label, from, to string) string {
	var iri string
	if id != "" {
		iri = s.t.Base + "eid/" + escape(id)
	} else {
		iri = s.t.Base + "edge/" + escape(label) + "/" + escape(from) + "/" + escape(to)
	}
	v, _ := IRI(iri)
	return v
}

// triples of a vertex and of an edge, as N-Triples statements.
func (s *Store) vertexTriples(v *graft.Vertex, out map[string]bool) {
	iri := s.vertexIRI(v.ID)
	l, _ := IRI(s.t.Label(v.Label))
	out[iri+" <"+RDFType+"> "+l+" ."] = true
	for k, val := range v.Props {
		p, _ := IRI(s.t.Prop(k))
		out[iri+" "+p+" "+s.t.Literal(val)+" ."] = true
	}
}

func (s *Store) edgeTriples(e *graft.Edge, out map[string]bool) {
	ed := s.edgeIRI(e.ID, e.Label, e.From, e.To)
	from, to := s.vertexIRI(e.From), s.vertexIRI(e.To)
	out[ed+" "+s.pFrom+" "+from+" ."] = true
	out[ed+" "+s.pTo+" "+to+" ."] = true
	out[ed+" "+s.pLabel+" "+quote(e.Label)+" ."] = true
	if e.ID == "" {
		p, _ := IRI(s.t.EdgeLabel(e.Label))
		out[from+" "+p+" "+to+" ."] = true
	}
	for k, val := range e.Props {
		p, _ := IRI(s.t.Prop(k))
		out[ed+" "+p+" "+s.t.Literal(val)+" ."] = true
	}
}

func (s *Store) fenceIRI(key string) string { v, _ := IRI(s.t.Base + "fence/" + escape(key)); return v }

const dataChunk = 500

// Apply implements graft.Sink: load what the batch touches, apply it in
// memory (exact per-write errors before anything is written), and send the
// difference as one update request: the deletes of deleted vertices, then
// DELETE DATA and INSERT DATA.
func (s *Store) Apply(ctx context.Context, b *graft.Batch) error {
	start := time.Now()
	touched := semantics.TouchedBy(b.Writes)
	edges := map[string]bool{} // edge resource IRIs
	for r := range touched.Natural {
		edges[s.edgeIRI("", r[1], r[0], r[2])] = true
	}
	for id := range touched.IDs {
		edges[s.edgeIRI(id, "", "", "")] = true
	}
	g := semantics.New()
	before := map[string]*graft.Vertex{}
	beforeE := map[string]*graft.Edge{}
	var subjects []string
	for id := range touched.Vertices {
		subjects = append(subjects, s.vertexIRI(id))
	}
	vs, err := s.loadVertices(ctx, subjects)
	if err != nil {
		return err
	}
	for _, v := range vs {
		g.Put(*v)
		before[v.ID] = v
	}
	put := func(e *graft.Edge) error {
		g.PutEdge(*e)
		beforeE[semantics.EdgeKey(e)] = e
		return nil
	}
	if len(edges) > 0 {
		rows, err := s.rowsOf(ctx, sortedKeys(edges), "")
		if err != nil {
			return err
		}
		if err := assembled(s.edgesOf, put)(rows); err != nil {
			return err
		}
	}
	if len(touched.Groups) > 0 {
		var vals []string
		for k := range touched.Groups {
			vals = append(vals, "("+s.vertexIRI(k[0])+" "+quote(k[1])+")")
		}
		sort.Strings(vals)
		if err := s.loadEdges(ctx, "VALUES (?f ?l) { "+strings.Join(vals, " ")+" } ?s "+s.pFrom+" ?f ; "+s.pLabel+" ?l", put); err != nil {
			return err
		}
	}
	var fenceKeys []string
	if b.Fence != 0 {
		fenceKeys = b.FenceKeys()
		if err := s.checkFences(ctx, fenceKeys, b.Fence); err != nil {
			return err
		}
	}

	versioned := semantics.Versioned(b.Writes)
	loadedVersions := semantics.NewLoaded()
	if versioned {
		if ids := semantics.DeletedByVersioned(b.Writes); len(ids) > 0 {
			var vals []string
			for _, id := range ids {
				vals = append(vals, s.vertexIRI(id))
			}
			sort.Strings(vals)
			for _, p := range []string{s.pFrom, s.pTo} {
				if err := s.loadEdges(ctx, "VALUES ?v { "+strings.Join(vals, " ")+" } ?s "+p+" ?v", put); err != nil {
					return err
				}
			}
		}
		if err := s.loadVersions(ctx, b.Writes, touched, beforeE, &loadedVersions); err != nil {
			return err
		}
		g.Load(loadedVersions)
	}

	read := time.Now()
	s.readNanos.Add(int64(read.Sub(start)))
	deleted, err := g.ApplyAttributed(b.Writes, func(id string) bool { return before[id] != nil })
	if err != nil {
		return err
	}

	// Old triples, without those of deleted vertices and their edges (the
	// pattern deletes remove them), and new ones.
	oldT, newT := map[string]bool{}, map[string]bool{}
	for _, v := range before {
		if !deleted[v.ID] {
			s.vertexTriples(v, oldT)
		}
	}
	for _, e := range beforeE {
		if !deleted[e.From] && !deleted[e.To] {
			s.edgeTriples(e, oldT)
		}
	}
	afterV, afterE := g.Snapshot()
	for i := range afterV {
		s.vertexTriples(&afterV[i], newT)
	}
	for i := range afterE {
		s.edgeTriples(&afterE[i], newT)
	}
	var ops []string
	for _, id := range sortedKeys(deleted) {
		v := s.vertexIRI(id)
		ops = append(ops,
			"DELETE { GRAPH "+s.graph+" { ?s ?p ?o } } WHERE { GRAPH "+s.graph+" { ?s "+s.pFrom+" "+v+" ; ?p ?o } }",
			"DELETE { GRAPH "+s.graph+" { ?s ?p ?o } } WHERE { GRAPH "+s.graph+" { ?s "+s.pTo+" "+v+" ; ?p ?o } }",
			"DELETE { GRAPH "+s.graph+" { "+v+" ?p ?o } } WHERE { GRAPH "+s.graph+" { "+v+" ?p ?o } }",
			"DELETE { GRAPH "+s.graph+" { ?s ?p "+v+" } } WHERE { GRAPH "+s.graph+" { ?s ?p "+v+" } }")
	}
	var del, ins []string
	for t := range oldT {
		if !newT[t] {
			del = append(del, t)
		}
	}
	for t := range newT {
		if !oldT[t] {
			ins = append(ins, t)
		}
	}
	if versioned {
		clear, vins := s.versionTriples(g.VersionChanges(loadedVersions))
		ops, ins = append(ops, clear...), append(ins, vins...)
	}
	if len(fenceKeys) > 0 {
		tok := quote(strconv.FormatUint(b.Fence, 10)) + "^^<" + XSDLong + ">"
		var vals []string
		for _, k := range fenceKeys {
			f := s.fenceIRI(k)
			vals = append(vals, f)
			ins = append(ins, f+" "+s.pToken+" "+tok+" .")
		}
		ops = append(ops, "DELETE { GRAPH "+s.graph+" { ?f "+s.pToken+" ?t } } WHERE { GRAPH "+s.graph+" { VALUES ?f { "+strings.Join(vals, " ")+" } ?f "+s.pToken+" ?t } }")
	}
	computed := time.Now()
	s.computeNanos.Add(int64(computed.Sub(read)))
	defer func() { s.updateNanos.Add(int64(time.Since(computed))) }()
	// Deletes Virtuoso would merge with an insert of the same request go
	// first, in a request of their own (see collisions).
	if first, rest := collisions(del, ins); len(first) > 0 {
		sort.Strings(first)
		var pre []string
		for i := 0; i < len(first); i += dataChunk {
			pre = append(pre, "DELETE DATA { GRAPH "+s.graph+" {\n"+strings.Join(first[i:min(i+dataChunk, len(first))], "\n")+"\n} }")
		}
		if err := s.update(ctx, strings.Join(pre, " ;\n")); err != nil {
			return err
		}
		del = rest
	}
	// DATA blocks of at most dataChunk triples: Virtuoso's SPARQL compiler
	// runs out of memory on one block of a few thousand.
	sort.Strings(del)
	for i := 0; i < len(del); i += dataChunk {
		ops = append(ops, "DELETE DATA { GRAPH "+s.graph+" {\n"+strings.Join(del[i:min(i+dataChunk, len(del))], "\n")+"\n} }")
	}
	sort.Strings(ins)
	for i := 0; i < len(ins); i += dataChunk {
		ops = append(ops, "INSERT DATA { GRAPH "+s.graph+" {\n"+strings.Join(ins[i:min(i+dataChunk, len(ins))], "\n")+"\n} }")
	}
	if len(ops) == 0 {
		return nil
	}
	return s.update(ctx, strings.Join(ops, " ;\n"))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// collisions splits the deletes of a batch's difference: those that
// Virtuoso would merge with one of its inserts, and the rest. When one
// request deletes a number or a boolean and inserts on the same subject and
// predicate a value of another of these types that is equal as a number
// (1 and true, 0 and false, 1 and 1.0), Virtuoso keeps the old value and
// drops the new one (7.2; TestTypeChangesRoundTrip). Sent in a request of
// their own before the rest, the deletes cannot merge; a failure between
// the two leaves the property missing until the engine applies the batch
// again, which it does (the deletes are already done, the rest is not).
func collisions(del, ins []string) (first, rest []string) {
	if len(del) == 0 {
		return nil, del
	}
	inserted := map[string]string{} // subject, predicate and value → datatype
	for _, t := range ins {
		if k, dt, ok := numericTriple(t); ok {
			inserted[k] = dt
		}
	}
	if len(inserted) == 0 {
		return nil, del
	}
	for _, t := range del {
		if k, dt, ok := numericTriple(t); ok {
			if other, ok := inserted[k]; ok && other != dt {
				first = append(first, t)
				continue
			}
		}
		rest = append(rest, t)
	}
	return first, rest
}

// numericTriple reads an N-Triples statement whose object is an xsd:long,
// xsd:double or xsd:boolean: its subject, predicate and value as a number,
// and its datatype.
func numericTriple(t string) (key, datatype string, ok bool) {
	sub, rest, _ := strings.Cut(t, " ")
	pred, obj, _ := strings.Cut(rest, " ")
	obj = strings.TrimSuffix(obj, " .")
	lex, dt, found := strings.Cut(obj, "\"^^<")
	if !found || !strings.HasPrefix(lex, "\"") {
		return "", "", false
	}
	lex, dt = lex[1:], strings.TrimSuffix(dt, ">")
	var n float64
	switch dt {
	case XSDBool:
		if lex == "true" {
			n = 1
		}
	case XSDLong, XSDDbl:
		var err error
		if n, err = strconv.ParseFloat(lex, 64); err != nil {
			return "", "", false
		}
	default:
		return "", "", false
	}
	return sub + " " + pred + " " + strconv.FormatFloat(n, 'g', -1, 64), dt, true
}
