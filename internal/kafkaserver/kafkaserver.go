// Package kafkaserver starts Apache Kafka (the version test/kafka/pom.xml
// pins) for the tests: one broker that is also its own KRaft controller, on
// free loopback ports, with a throwaway log directory, through
// internal/javaserver. Start it once per test package (TestMain): a JVM per
// test would not fit two cores.
package kafkaserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/graftdb/graft/internal/freeport"
	"github.com/graftdb/graft/internal/javaserver"
)

// Server is a running broker.
type Server struct {
	Addr string // 127.0.0.1:PORT
	*javaserver.Server
}

// Brokers is the seed list for clients.
func (s *Server) Brokers() []string { return []string{s.Addr} }

const properties = `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%[3]s
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
log.flush.interval.messages=1
`

// Start starts a broker (skipping, or failing under CI=true, when Java or
// the jars are missing). Stop it from TestMain.
func Start(t testing.TB) *Server {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	cport, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	js := javaserver.Start(t, javaserver.Spec{
		Project: "kafka",
		Main:    "kafka.Kafka",
		JVM:     []string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"},
		Setup: func(dir, classpath string) ([]string, error) {
			conf := filepath.Join(dir, "server.properties")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(properties, port, cport, filepath.Join(dir, "data"))), 0o644); err != nil {
				return nil, err
			}
			// A cluster id as Kafka makes them: never starting with '-',
			// which the tool's argument parser takes for an option (one
			// start in 64 failed so, in CI).
			var cluster string
			for cluster == "" || cluster[0] == '-' {
				var id [16]byte
				rand.Read(id[:])
				cluster = base64.RawURLEncoding.EncodeToString(id[:])
			}
			out, err := exec.Command("java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", conf, "--standalone").CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("kafka-storage format: %v\n%s", err, out)
			}
			return []string{conf}, nil
		},
		Ready: func(ctx context.Context) error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				return err
			}
			defer cl.Close()
			// Ready when it answers metadata with itself as a broker.
			m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
			if err != nil {
				return err
			}
			if len(m.Brokers) == 0 {
				return fmt.Errorf("no broker in the metadata yet")
			}
			return nil
		},
		StartTimeout: 90 * time.Second,
	})
	return &Server{Addr: addr, Server: js}
}

// CreateTopic creates a topic with the partitions (replication 1).
func (s *Server) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

var (
	sharedMu sync.Mutex
	shared   *Server
	topics   atomic.Int64
)

// Shared is the package's broker, started by the first test that needs it;
// the package's TestMain calls StopShared after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		shared = Start(t)
	}
	return shared
}

// StopShared stops the shared broker, if one was started.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
}

// UniqueName returns prefix and a number no earlier call of this process
// returned: topics and groups of tests sharing a broker never meet.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, topics.Add(1))
}
