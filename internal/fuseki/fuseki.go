// Package fuseki starts Apache Jena Fuseki (the version test/fuseki/pom.xml
// pins) for the SPARQL sink's tests: one in-memory dataset, /ds, that takes
// queries and updates, on a free loopback port. It uses the shared Java
// server helper (internal/javaserver): without Java or the jars a test
// skips, except under CI=true, where it fails.
package fuseki

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/graftdb/graft/internal/freeport"
	"github.com/graftdb/graft/internal/javaserver"
)

// Server is a running Fuseki.
type Server struct {
	// Endpoint is the dataset's SPARQL endpoint (queries and updates):
	// http://127.0.0.1:PORT/ds.
	Endpoint string
	*javaserver.Server
}

// Start starts a server. It is meant for a package's TestMain-lifetime
// server: call Stop.
func Start(t testing.TB) *Server {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port) + "/ds"
	js := javaserver.Start(t, javaserver.Spec{
		Project: "fuseki",
		Main:    "org.apache.jena.fuseki.main.cmds.FusekiMainCmd",
		JVM:     []string{"-Xms128m", "-Xmx1g", "-XX:+UseSerialGC"},
		Setup: func(dir, _ string) ([]string, error) {
			return []string{"--port", strconv.Itoa(port), "--localhost", "--update", "--mem", "/ds"}, nil
		},
		Ready: func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?query=ASK%7B%7D", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: HTTP %d", endpoint, resp.StatusCode)
			}
			return nil
		},
		StartTimeout: time.Minute,
	})
	return &Server{Endpoint: endpoint, Server: js}
}
