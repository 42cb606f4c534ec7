package config

import "strings"

// Scheme is one form of URL a setting accepts. The tables below are the
// only list of them: validation, the commands' help and the assembly
// (package app) all read them.
type Scheme struct {
	Prefix string // what a URL of the scheme starts with
	Form   string // how a user writes it, for messages and help
	// Moves: a source whose partitions move between the instances that
	// share it (a Kafka group, Kinesis leases), so that another instance
	// can change what this one wrote; the in-process write cache alone is
	// refused with it (docs/cache.md).
	Moves bool
	// Versions: a source that derives a version for each record
	// (graft.Versioner), or a sink that guards versions (docs/DESIGN.md,
	// "Versions"); versions: derive needs both.
	Versions bool
}

// Sources are the forms of the source setting (empty: the embedded
// JetStream).
var Sources = []Scheme{
	{Prefix: "nats://", Form: "nats://HOST:PORT/STREAM/SUBJECT", Versions: true},
	{Prefix: "kafka://", Form: "kafka://BROKERS/TOPICS?group=NAME", Moves: true, Versions: true},
	{Prefix: "kinesis://", Form: "kinesis://STREAM?region=R", Moves: true},
	{Prefix: "file:", Form: "file:PATH", Versions: true},
}

// Sinks are the forms of the sink setting (empty: the embedded store).
var Sinks = []Scheme{
	{Prefix: "sqlite:", Form: "sqlite:PATH", Versions: true},
	{Prefix: "postgres://", Form: "postgres://USER@HOST:PORT/DB?sslmode=…", Versions: true},
	{Prefix: "postgresql://", Form: "postgresql://…", Versions: true},
	{Prefix: "gremlin+ws://", Form: "gremlin+ws://HOST:PORT/gremlin"},
	{Prefix: "gremlin+wss://", Form: "gremlin+wss://HOST:PORT/gremlin"},
	{Prefix: "sparql+http://", Form: "sparql+http://HOST:PORT/sparql", Versions: true},
	{Prefix: "sparql+https://", Form: "sparql+https://HOST:PORT/sparql", Versions: true},
}

// Redis is the form of the shared cache's and the locker's URL.
var Redis = []Scheme{
	{Prefix: "redis://", Form: "redis://[USER:PASSWORD@]HOST:PORT/DB"},
	{Prefix: "rediss://", Form: "rediss://… (TLS)"},
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
