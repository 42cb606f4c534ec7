package sparql

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/semantics"
)

// Config is what a sparql+http(s):// URL says.
type Config struct {
	Endpoint string // http(s)://…/sparql
	Graph    string // the named graph written and read
	Terms    Terms
	User     string // basic auth
	Password string
	Bearer   string // bearer token (token=)
	// IAM signs every request with SigV4 for neptune-db (Neptune SPARQL
	// with IAM authentication); Region defaults to the host name's.
	IAM     bool
	Region  string
	Timeout time.Duration
	// Limits of one batch (one update request).
	MaxWrites, MaxUnits, Concurrency int
}

// ParseURL reads sparql+http(s)://[USER:PASSWORD@]HOST:PORT/PATH
// [?graph=IRI&base=IRI&floats=exact|double&writes=500&units=5000&concurrency=4&timeout=30s].
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "sparql+http" && u.Scheme != "sparql+https") || u.Host == "" {
		return Config{}, fmt.Errorf("sink %q: want sparql+http(s)://HOST:PORT/sparql", redact(raw))
	}
	c := Config{Graph: "urn:graft:graph", Terms: Terms{Base: DefaultB, ExactFloats: true}, Timeout: 30 * time.Second,
		MaxWrites: 500, MaxUnits: 5000, Concurrency: 4}
	q := u.Query()
	for name := range q {
		v := q.Get(name)
		switch name {
		case "graph":
			c.Graph = v
		case "base":
			c.Terms.Base = v
		case "floats":
			switch v {
			case "exact":
			case "double":
				c.Terms.ExactFloats = false
			default:
				return Config{}, fmt.Errorf("sink %q: floats=%q: exact (default: the stored text is Go's exact form) or double (xsd:double; some stores round it)", redact(raw), v)
			}
		case "writes", "units", "concurrency":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return Config{}, fmt.Errorf("sink %q: %s=%q: a positive integer", redact(raw), name, v)
			}
			*map[string]*int{"writes": &c.MaxWrites, "units": &c.MaxUnits, "concurrency": &c.Concurrency}[name] = n
		case "token":
			c.Bearer = v
		case "iam":
			if v != "true" && v != "false" {
				return Config{}, fmt.Errorf("sink %q: iam=%q: true or false", redact(raw), v)
			}
			c.IAM = v == "true"
		case "region":
			c.Region = v
		case "timeout":
			if c.Timeout, err = time.ParseDuration(v); err != nil || c.Timeout <= 0 {
				return Config{}, fmt.Errorf("sink %q: timeout=%q: a positive duration", redact(raw), v)
			}
		default:
			return Config{}, fmt.Errorf("sink %q: unknown parameter %q (graph, base, floats, writes, units, concurrency, timeout, token, iam, region)", redact(raw), name)
		}
	}
	for _, iri := range []string{c.Graph, c.Terms.Base} {
		if _, err := IRI(iri); err != nil || !strings.Contains(iri, ":") {
			return Config{}, fmt.Errorf("sink %q: %q is not an absolute IRI", redact(raw), iri)
		}
	}
	if u.User != nil {
		c.User = u.User.Username()
		c.Password, _ = u.User.Password()
		u.User = nil
	}
	u.Scheme = strings.TrimPrefix(u.Scheme, "sparql+")
	u.RawQuery = ""
	c.Endpoint = u.String()
	return c, nil
}

// redact hides the password and the bearer token of a sink URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "sparql+…"
	}
	if q := u.Query(); q.Get("token") != "" {
		q.Set("token", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Store is the SPARQL sink and its Reader.
type Store struct {
	cfg    Config
	client *http.Client
	iam    *sigv4 // nil without iam=true
	graph  string // <graph>
	t      Terms
	// predicates of edge resources
	pFrom, pTo, pLabel, pToken string
}

var (
	_ graft.Sink   = (*Store)(nil)
	_ graft.Reader = (*Store)(nil)
)

// Open returns the store; Ping says whether the endpoint answers.
func Open(cfg Config) (*Store, error) {
	s := &Store{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, t: cfg.Terms}
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
	return s, nil
}

// Endpoint names the server and graph.
func (s *Store) Endpoint() string { return s.cfg.Endpoint + " graph " + s.cfg.Graph }

// Limits implements graft.Sink.
func (s *Store) Limits() graft.SinkLimits {
	return graft.SinkLimits{MaxWrites: s.cfg.MaxWrites, MaxUnits: s.cfg.MaxUnits, MaxBytes: 8 << 20, Concurrency: s.cfg.Concurrency}
}

// Ping implements graft.Sink.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.query(ctx, "ASK { }")
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
	load := func(q string) error {
		es, err := s.loadEdges(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range es {
			g.PutEdge(*e)
			beforeE[semantics.EdgeKey(e)] = e
		}
		return nil
	}
	if len(edges) > 0 {
		if err := load("VALUES ?s { " + strings.Join(sortedKeys(edges), " ") + " } ?s ?p ?o"); err != nil {
			return err
		}
	}
	if len(touched.Groups) > 0 {
		var vals []string
		for k := range touched.Groups {
			vals = append(vals, "("+s.vertexIRI(k[0])+" "+quote(k[1])+")")
		}
		sort.Strings(vals)
		if err := load("VALUES (?f ?l) { " + strings.Join(vals, " ") + " } ?s " + s.pFrom + " ?f ; " + s.pLabel + " ?l ; ?p ?o"); err != nil {
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

// update sends a SPARQL update, form-encoded.
func (s *Store) update(ctx context.Context, text string) error {
	_, err := s.post(ctx, "update", text)
	return err
}

// query runs a SELECT or ASK and returns its bindings.
func (s *Store) query(ctx context.Context, text string) ([]map[string]Term, error) {
	body, err := s.post(ctx, "query", text)
	if err != nil {
		return nil, err
	}
	var r struct {
		Results struct {
			Bindings []map[string]Term `json:"bindings"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, graft.NewError(graft.Transient, fmt.Errorf("%s: results: %w", s.cfg.Endpoint, err))
	}
	return r.Results.Bindings, nil
}

// post sends a form-encoded request (Virtuoso hangs on POST bodies typed
// application/sparql-query) and classifies failures.
func (s *Store) post(ctx context.Context, kind, text string) ([]byte, error) {
	form := url.Values{kind: {text}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Endpoint, strings.NewReader(form))
	if err != nil {
		return nil, graft.NewError(graft.Fatal, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/sparql-results+json")
	switch {
	case s.cfg.User != "":
		req.SetBasicAuth(s.cfg.User, s.cfg.Password)
	case s.cfg.Bearer != "":
		req.Header.Set("Authorization", "Bearer "+s.cfg.Bearer)
	}
	if s.iam != nil {
		if err := s.iam.sign(ctx, req, []byte(form)); err != nil {
			return nil, graft.NewError(graft.Transient, fmt.Errorf("%s: IAM: %w", s.cfg.Endpoint, err))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, graft.NewError(graft.Reconnect, fmt.Errorf("%s: %w", s.cfg.Endpoint, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, graft.NewError(graft.Transient, fmt.Errorf("%s: %w", s.cfg.Endpoint, err))
	}
	if resp.StatusCode/100 != 2 {
		return nil, classify(resp.StatusCode, body, s.cfg.Endpoint)
	}
	return body, nil
}

// classify gives an HTTP failure its class, from the status and the body.
func classify(status int, body []byte, endpoint string) error {
	msg := strings.TrimSpace(string(body))
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	err := fmt.Errorf("%s: HTTP %d: %s", endpoint, status, msg)
	switch {
	case strings.Contains(msg, "deadlock") || strings.Contains(msg, "SR172") || strings.Contains(msg, "ConcurrentModification"):
		return graft.NewError(graft.Conflict, err)
	case status == http.StatusRequestEntityTooLarge || strings.Contains(msg, "too long") || strings.Contains(msg, "QueryTooLarge") ||
		strings.Contains(msg, "memory exhausted"):
		return graft.NewError(graft.TooLarge, err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return graft.NewError(graft.Fatal, err)
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || strings.Contains(msg, "Throttling"):
		return graft.NewError(graft.Throttled, err)
	case status == http.StatusBadRequest:
		return graft.NewError(graft.Permanent, err)
	}
	return graft.NewError(graft.Transient, err)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
