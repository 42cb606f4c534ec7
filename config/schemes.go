package config

import "strings"

// Scheme is one form of URL a setting accepts. The tables below are the
// only list of them: validation, the commands' help and the assembly
// (package app) all read them.
type Scheme struct {
	Prefix string // what a URL of the scheme starts with
	Form   string // how a user writes it, for messages and help
}

// Sources are the forms of the source setting (empty: the embedded
// JetStream).
var Sources = []Scheme{
	{"nats://", "nats://HOST:PORT/STREAM/SUBJECT"},
	{"kafka://", "kafka://BROKERS/TOPICS?group=NAME"},
	{"kinesis://", "kinesis://STREAM?region=R"},
	{"file:", "file:PATH"},
}

// Sinks are the forms of the sink setting (empty: the embedded store).
var Sinks = []Scheme{
	{"sqlite:", "sqlite:PATH"},
	{"postgres://", "postgres://USER@HOST:PORT/DB?sslmode=…"},
	{"postgresql://", "postgresql://…"},
	{"gremlin+ws://", "gremlin+ws://HOST:PORT/gremlin"},
	{"gremlin+wss://", "gremlin+wss://HOST:PORT/gremlin"},
	{"sparql+http://", "sparql+http://HOST:PORT/sparql"},
	{"sparql+https://", "sparql+https://HOST:PORT/sparql"},
}

// Redis is the form of the shared cache's and the locker's URL.
var Redis = []Scheme{
	{"redis://", "redis://[USER:PASSWORD@]HOST:PORT/DB"},
	{"rediss://", "rediss://… (TLS)"},
}

// Match returns the scheme of url in schemes.
func Match(schemes []Scheme, url string) (Scheme, bool) {
	for _, s := range schemes {
		if strings.HasPrefix(url, s.Prefix) {
			return s, true
		}
	}
	return Scheme{}, false
}

// Forms lists the schemes' forms for a message: "a, b or c".
func Forms(schemes []Scheme) string {
	forms := make([]string, len(schemes))
	for i, s := range schemes {
		forms[i] = s.Form
	}
	if len(forms) == 1 {
		return forms[0]
	}
	return strings.Join(forms[:len(forms)-1], ", ") + " or " + forms[len(forms)-1]
}
