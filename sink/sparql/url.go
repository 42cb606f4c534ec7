package sparql

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
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
