package kinesis

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Lease events counted in graft_kinesis_lease_events_total.
const (
	evTaken       = "taken"         // a free lease, or one a handoff gave this instance
	evTakenDead   = "taken_expired" // the lease of a worker that stopped renewing it
	evHandedOver  = "handed_over"   // given to a worker that asked, after the drain
	evLost        = "lost"          // another worker holds it now (or may: renewals failed)
	evFinished    = "finished"      // SHARD_END written
	evCheckpoints = "checkpoint_failed"
)

type metrics struct {
	events *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "graft", Subsystem: "kinesis", Name: "lease_events_total",
		Help: "Lease events of this instance: taken (every lease it starts reading), taken_expired (of those, from a worker that stopped renewing), handed_over, lost, finished (SHARD_END), checkpoint_failed."}, []string{"event"})}
	for _, e := range []string{evTaken, evTakenDead, evHandedOver, evLost, evFinished, evCheckpoints} {
		m.events.WithLabelValues(e) // present at 0 from the start
	}
	return m
}

func (m *metrics) add(event string) { m.events.WithLabelValues(event).Inc() }

// Collectors returns the source's metrics: lease events, the leases this
// instance holds, the stream's shards not caught up (whoever holds them) and
// those nobody holds.
func (s *Source) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		s.metrics.events,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "graft", Subsystem: "kinesis", Name: "leases_held",
			Help: "Shards whose lease this instance holds."}, func() float64 { return float64(len(s.Owned())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "graft", Subsystem: "kinesis", Name: "shards_behind",
			Help: "Readable shards of the stream not caught up: held here and not read to the tip, held by another instance that says so or stopped renewing, or held by nobody."}, func() float64 {
			n, _ := s.shardsBehind(context.Background(), time.Second)
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "graft", Subsystem: "kinesis", Name: "shards_unowned",
			Help: "Readable shards nobody holds a live lease on (their owner stopped, or none took them yet)."}, func() float64 {
			_, n := s.shardsBehind(context.Background(), time.Second)
			return float64(n)
		}),
	}
}
