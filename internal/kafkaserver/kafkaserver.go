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
	"strings"
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

// properties is a node's configuration: %[1]d its broker port, %[2]d its
// controller port, %[3]s its log directory, %[4]d its node id, %[5]s the
// quorum line, %[6]d the replication of Kafka's internal topics. A node
// that stops heartbeating is fenced after 3 s (Kafka's default is 9 s), so
// that the failover tests do not wait long for new leaders.
const properties = `process.roles=broker,controller
node.id=%[4]d
%[5]s
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%[3]s
num.partitions=1
offsets.topic.replication.factor=%[6]d
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=%[6]d
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=false
log.flush.interval.messages=1
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
`

// Start starts a broker (skipping, or failing under CI=true, when Java or
// the jars are missing). Stop it from TestMain.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartCluster(t, 1).Nodes[0]
}

// Cluster is brokers that are also the KRaft controllers of one cluster.
type Cluster struct {
	Nodes []*Server // node id i+1
}

// Brokers is the seed list for clients: every node.
func (c *Cluster) Brokers() []string {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.Addr)
	}
	return addrs
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Node returns the node with the Kafka node id.
func (c *Cluster) Node(id int32) *Server { return c.Nodes[id-1] }

// StartCluster starts n nodes, each a broker and a controller (a static
// quorum of n voters when n > 1), with Kafka's internal topics replicated
// to min(n, 3) of them; it returns once every node serves and the cluster's
// metadata lists them all. The nodes start together: none can be ready
// before a majority of the quorum runs.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, 2*n)
	for i := range ports {
		p, err := freeport.Port()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	// A cluster id as Kafka makes them: never starting with '-', which the
	// tool's argument parser takes for an option (one start in 64 failed
	// so, in CI).
	var cluster string
	for cluster == "" || cluster[0] == '-' {
		var id [16]byte
		rand.Read(id[:])
		cluster = base64.RawURLEncoding.EncodeToString(id[:])
	}
	quorum, format := "controller.quorum.bootstrap.servers=127.0.0.1:"+strconv.Itoa(ports[1]), []string{"--standalone"}
	if n > 1 {
		var voters []string
		for i := range n {
			voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, ports[2*i+1]))
		}
		quorum, format = "controller.quorum.voters="+strings.Join(voters, ","), nil
	}
	specs := make([]javaserver.Spec, n)
	addrs := make([]string, n)
	for i := range n {
		port, cport, id := ports[2*i], ports[2*i+1], int32(i+1)
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
		specs[i] = javaserver.Spec{
			Project: "kafka",
			Main:    "kafka.Kafka",
			JVM:     []string{"-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"},
			Setup: func(dir, classpath string) ([]string, error) {
				conf := filepath.Join(dir, "server.properties")
				if err := os.WriteFile(conf, []byte(fmt.Sprintf(properties, port, cport, filepath.Join(dir, "data"), id, quorum, min(n, 3))), 0o644); err != nil {
					return nil, err
				}
				args := append([]string{"-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster, "-c", conf}, format...)
				if out, err := exec.Command("java", args...).CombinedOutput(); err != nil {
					return nil, fmt.Errorf("kafka-storage format: %v\n%s", err, out)
				}
				return []string{conf}, nil
			},
			Ready:        ready(addrs[i], id),
			StartTimeout: 90 * time.Second,
		}
	}
	c := &Cluster{}
	for i, js := range javaserver.StartAll(t, specs) {
		c.Nodes = append(c.Nodes, &Server{Addr: addrs[i], Server: js})
	}
	return c
}

// ready: the node at addr answers metadata, naming itself as a broker.
func ready(addr string, id int32) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return err
		}
		defer cl.Close()
		m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		for _, b := range m.Brokers {
			if b.NodeID == id {
				return nil
			}
		}
		return fmt.Errorf("node %d is not in the metadata yet", id)
	}
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
