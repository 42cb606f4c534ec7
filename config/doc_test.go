package config

import (
	"os"
	"strings"
	"testing"
)

// docs/configuration.md lists every setting and every source and sink
// scheme: a setting or a scheme added without its documentation fails here.
func TestConfigurationDocumented(t *testing.T) {
	raw, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, p := range Paths() {
		leaf := p[strings.LastIndexByte(p, '.')+1:]
		if !strings.Contains(doc, leaf+":") {
			t.Errorf("setting %s is not in docs/configuration.md", p)
		}
	}
	for _, s := range append(append([]Scheme{}, Sources...), Sinks...) {
		name := strings.TrimSuffix(strings.TrimSuffix(s.Prefix, "://"), ":")
		if !strings.Contains(doc, name) {
			t.Errorf("scheme %s is not in docs/configuration.md", s.Prefix)
		}
	}
}
