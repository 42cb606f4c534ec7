package engine

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the engine's Prometheus metrics, one per Counters row
// and the in-flight gauge (all documented in docs/operations.md). Labels
// are bounded: none carries a key or an id.
func (e *Engine) Collectors() []prometheus.Collector {
	var out []prometheus.Collector
	for _, c := range Counters {
		v, scale := c.stat(&e.stats), c.Scale
		if scale == 0 {
			scale = 1
		}
		out = append(out, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "graft", Name: c.Metric, Help: c.Help},
			func() float64 { return float64(v.Load()) * scale }))
	}
	return append(out, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "graft", Name: "records_in_flight", Help: "Records taken from the source and not yet committed or dead-lettered."},
		func() float64 { s := e.stats.Snapshot(); return float64(s.InFlight()) }))
}
