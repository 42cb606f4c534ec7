package kafkatest

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/graftdb/graft/internal/kafkaserver"
)

// Kinds are the brokers Kafka tests run on: kfake (fast, in-process) and
// a real Apache Kafka broker (internal/kafkaserver, one JVM a package).
var Kinds = []string{"kfake", "kafka"}

// OnBrokers runs test as a subtest on each kind of broker.
func OnBrokers(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// Broker returns the addresses of a broker of the kind, with the topics
// (name → partitions) created: "kfake", a fresh in-process cluster closed
// when the test ends, or "kafka", the package's real broker
// (kafkaserver.Shared). On the shared real broker every name the test uses
// — its topics, and its groups too — takes the returned prefix, unique to
// the call, so that tests never see each other's topics or groups, not even
// through a regex; on kfake the prefix is empty.
func Broker(t testing.TB, kind string, topics map[string]int32) (addrs []string, prefix string) {
	t.Helper()
	switch kind {
	case "kfake":
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second)}
		for name, partitions := range topics {
			opts = append(opts, kfake.SeedTopics(partitions, name))
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs(), ""
	case "kafka":
		srv := kafkaserver.Shared(t)
		prefix = kafkaserver.UniqueName("t") + "."
		for name, partitions := range topics {
			srv.CreateTopic(t, prefix+name, partitions)
		}
		return srv.Brokers(), prefix
	}
	t.Fatalf("broker kind %q", kind)
	return nil, ""
}
