package sparql

// The property graph's terms in RDF: IRIs minted from any id, literals
// escaped by the SPARQL grammar, values typed so that they come back exactly,
// and their decoding from SPARQL JSON results.

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/graftdb/graft"
)

// Datatypes.
const (
	XSD      = "http://www.w3.org/2001/XMLSchema#"
	XSDLong  = XSD + "long"
	XSDBool  = XSD + "boolean"
	XSDDbl   = XSD + "double"
	XSDStr   = XSD + "string"
	RDFType  = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
	Float64  = "urn:graft:float64" // the exact datatype: see Terms.ExactFloats
	DefaultB = "urn:graft:"        // the default base IRI
)

// Terms mints and reads the RDF terms of one graph.
type Terms struct {
	Base string // every IRI Graft mints starts with it
	// ExactFloats writes floats with Graft's own datatype holding the
	// shortest exact decimal form. xsd:double is the interoperable choice,
	// but a store may round it: Virtuoso keeps 16 significant digits where
	// a float64 needs up to 17.
	ExactFloats bool
}

// escape percent-encodes every byte but the unreserved ones (RFC 3986), so
// that any string — spaces, quotes, '>', NUL, any UTF-8 — makes a valid IRI
// path segment, and decoding gives it back exactly.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// Vertex is the IRI of a vertex.
func (t Terms) Vertex(id string) string { return t.Base + "v/" + escape(id) }

// Label is the IRI of a label (the object of rdf:type).
func (t Terms) Label(label string) string { return t.Base + "label/" + escape(label) }

// Prop is the IRI of a property key.
func (t Terms) Prop(key string) string { return t.Base + "p/" + escape(key) }

// EdgeLabel is the predicate of a natural edge's triple.
func (t Terms) EdgeLabel(label string) string { return t.Base + "e/" + escape(label) }

// unmint returns what follows prefix in iri, decoded.
func (t Terms) unmint(iri, kind string) (string, error) {
	rest, ok := strings.CutPrefix(iri, t.Base+kind)
	if !ok {
		return "", fmt.Errorf("IRI %q is not a %s of base %q", iri, strings.TrimSuffix(kind, "/"), t.Base)
	}
	s, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("IRI %q: %w", iri, err)
	}
	return s, nil
}

// VertexID reads a vertex IRI back.
func (t Terms) VertexID(iri string) (string, error) { return t.unmint(iri, "v/") }

// LabelOf reads a label IRI back.
func (t Terms) LabelOf(iri string) (string, error) { return t.unmint(iri, "label/") }

// PropKey reads a property IRI back.
func (t Terms) PropKey(iri string) (string, error) { return t.unmint(iri, "p/") }

// IRI writes an IRI term. Minted IRIs hold only unreserved characters,
// '%', ':' and '/'; anything else is refused (never spliced).
func IRI(iri string) (string, error) {
	for _, r := range iri {
		if r <= ' ' || strings.ContainsRune("<>\"{}|^`\\", r) {
			return "", fmt.Errorf("IRI %q: %q is not allowed", iri, r)
		}
	}
	return "<" + iri + ">", nil
}

// quote writes a SPARQL string literal: the ECHAR escapes, and \uXXXX for
// every other control character, so that any string — quotes, newlines,
// NUL — stays exactly what it was.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Literal writes a value as a typed SPARQL literal: int64 as xsd:long
// (exact), floats as xsd:double or the exact datatype, booleans, strings.
func (t Terms) Literal(v graft.Value) string {
	switch v.Kind() {
	case graft.KindInt:
		return quote(strconv.FormatInt(v.Int(), 10)) + "^^<" + XSDLong + ">"
	case graft.KindFloat:
		f := v.Float()
		lex := strconv.FormatFloat(f, 'g', -1, 64)
		if f == 0 && math.Signbit(f) {
			lex = "-0.0"
		}
		if t.ExactFloats {
			return quote(lex) + "^^<" + Float64 + ">"
		}
		return quote(lex) + "^^<" + XSDDbl + ">"
	case graft.KindBool:
		return quote(strconv.FormatBool(v.Bool())) + "^^<" + XSDBool + ">"
	}
	return quote(v.Str())
}

// Term is an RDF term of a SPARQL JSON result (application/sparql-results+json).
type Term struct {
	Type     string `json:"type"` // uri, literal, typed-literal (SPARQL 1.0), bnode
	Value    string `json:"value"`
	Datatype string `json:"datatype"`
}

// Value reads a literal back as a graft value.
func (t Terms) Value(term Term) (graft.Value, error) {
	if term.Type != "literal" && term.Type != "typed-literal" {
		return graft.Value{}, fmt.Errorf("want a literal, got a %s (%s)", term.Type, term.Value)
	}
	switch term.Datatype {
	case "", XSDStr:
		return graft.String(term.Value), nil
	case XSDLong, XSD + "integer", XSD + "int":
		n, err := strconv.ParseInt(term.Value, 10, 64)
		if err != nil {
			return graft.Value{}, fmt.Errorf("xsd:long %q: %w", term.Value, err)
		}
		return graft.Int(n), nil
	case XSDDbl, Float64, XSD + "float", XSD + "decimal":
		f, err := strconv.ParseFloat(term.Value, 64)
		if err != nil {
			return graft.Value{}, fmt.Errorf("double %q: %w", term.Value, err)
		}
		return graft.Float(f), nil
	case XSDBool:
		switch term.Value {
		case "true", "1": // Virtuoso answers 1 and 0
			return graft.Bool(true), nil
		case "false", "0":
			return graft.Bool(false), nil
		}
		return graft.Value{}, fmt.Errorf("xsd:boolean %q", term.Value)
	}
	return graft.Value{}, errors.New("unsupported datatype " + term.Datatype)
}
