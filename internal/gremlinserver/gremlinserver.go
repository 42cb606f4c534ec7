// Package gremlinserver starts Apache TinkerPop Gremlin Server (the version
// test/gremlin-server/pom.xml pins) for the Gremlin sink's tests, with two
// graphs that take the ids they are given (strings, as on Neptune):
//
//	g    TinkerGraph: not transactional; the semantic checks
//	gtx  TinkerTransactionGraph: each request is a transaction, committed
//	     or rolled back whole, with real concurrent-modification conflicts
//
// and JanusGraph Server (test/janusgraph/pom.xml) with the in-memory
// storage backend, one graph g, for the janusgraph dialect.
package gremlinserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/graftdb/graft/internal/freeport"
	"github.com/graftdb/graft/internal/javaserver"
)

// Server is a running Gremlin Server.
type Server struct {
	Addr    string // 127.0.0.1:PORT
	dialect string
	*javaserver.Server
}

// URL is the sink URL of one of the graphs: "g" or "gtx" (Gremlin Server),
// "g" (JanusGraph).
func (s *Server) URL(source string) string {
	return fmt.Sprintf("gremlin+ws://%s/gremlin?dialect=%s&source=%s", s.Addr, s.dialect, source)
}

const yaml = `host: 127.0.0.1
port: %d
evaluationTimeout: 60000
graphs: {
  graph: %s/tinkergraph.properties,
  txgraph: %s/tinkertx.properties}
scriptEngines: {
  gremlin-groovy: {
    plugins: { org.apache.tinkerpop.gremlin.server.jsr223.GremlinServerGremlinPlugin: {},
               org.apache.tinkerpop.gremlin.tinkergraph.jsr223.TinkerGraphGremlinPlugin: {},
               org.apache.tinkerpop.gremlin.jsr223.ScriptFileGremlinPlugin: {files: [%s/init.groovy]}}}}
serializers:
  - { className: org.apache.tinkerpop.gremlin.util.ser.GraphBinaryMessageSerializerV1 }
  - { className: org.apache.tinkerpop.gremlin.util.ser.GraphSONMessageSerializerV3, config: { ioRegistries: [org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerIoRegistryV3] }}
metrics: { slf4jReporter: { enabled: false } }
maxContentLength: 10485760
`

const props = `gremlin.graph=%s
gremlin.tinkergraph.vertexIdManager=ANY
gremlin.tinkergraph.edgeIdManager=ANY
gremlin.tinkergraph.vertexPropertyIdManager=LONG
`

const initScript = `def globals = [:]
globals << [g : graph.traversal(), gtx : txgraph.traversal()]
`

const janusYAML = `host: 127.0.0.1
port: %d
evaluationTimeout: 60000
graphManager: org.janusgraph.graphdb.management.JanusGraphManager
graphs: {
  graph: %s/janusgraph.properties}
scriptEngines: {
  gremlin-groovy: {
    plugins: { org.janusgraph.graphdb.tinkerpop.plugin.JanusGraphGremlinPlugin: {},
               org.apache.tinkerpop.gremlin.server.jsr223.GremlinServerGremlinPlugin: {},
               org.apache.tinkerpop.gremlin.jsr223.ScriptFileGremlinPlugin: {files: [%s/init.groovy]}}}}
serializers:
  - { className: org.apache.tinkerpop.gremlin.util.ser.GraphBinaryMessageSerializerV1, config: { ioRegistries: [org.janusgraph.graphdb.tinkerpop.JanusGraphIoRegistry] }}
metrics: { slf4jReporter: { enabled: false } }
maxContentLength: 10485760
`

const janusProps = `gremlin.graph=org.janusgraph.core.JanusGraphFactory
storage.backend=inmemory
`

const janusInit = `def globals = [:]
globals << [g : graph.traversal()]
`

// Start starts a Gremlin Server (skipping, or failing under CI=true, when
// Java or the jars are missing). Stop it from TestMain.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, "gremlin-server", "org.apache.tinkerpop.gremlin.server.GremlinServer", "tinkergraph", func(port int, dir string) map[string]string {
		return map[string]string{
			"server.yaml":            fmt.Sprintf(yaml, port, dir, dir, dir),
			"tinkergraph.properties": fmt.Sprintf(props, "org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerGraph"),
			"tinkertx.properties":    fmt.Sprintf(props, "org.apache.tinkerpop.gremlin.tinkergraph.structure.TinkerTransactionGraph"),
			"init.groovy":            initScript,
		}
	})
}

// StartJanusGraph starts a JanusGraph Server with the in-memory backend,
// the same way.
func StartJanusGraph(t testing.TB) *Server {
	t.Helper()
	return start(t, "janusgraph", "org.janusgraph.graphdb.server.JanusGraphServer", "janusgraph", func(port int, dir string) map[string]string {
		return map[string]string{
			"server.yaml":           fmt.Sprintf(janusYAML, port, dir, dir),
			"janusgraph.properties": janusProps,
			"init.groovy":           janusInit,
		}
	})
}

// start runs main from the jars of project with the configuration files
// that files gives for the port and the server's directory (server.yaml
// the argument).
func start(t testing.TB, project, main, dialect string, files func(port int, dir string) map[string]string) *Server {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	js := javaserver.Start(t, javaserver.Spec{
		Project: project,
		Main:    main,
		JVM:     []string{"-Xms256m", "-Xmx1g", "-XX:+UseSerialGC", "-Dlog4j.configuration=", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"},
		Setup: func(dir, _ string) ([]string, error) {
			for name, body := range files(port, dir) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					return nil, err
				}
			}
			return []string{filepath.Join(dir, "server.yaml")}, nil
		},
		Ready: func(ctx context.Context) error {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		},
		StartTimeout: 2 * time.Minute,
	})
	return &Server{Addr: addr, dialect: dialect, Server: js}
}
