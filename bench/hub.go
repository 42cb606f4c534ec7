package bench

import "fmt"

// HubWrite is write i of the late-hub workload (issue 17): key k(i mod
// hub), it upserts s_i (props i and h) and an edge s_i → s_h, the hub
// h = i - i mod hub, which write h (key k0) creates. bench/hubgen prints
// it; graft run's soak test posts it.
func HubWrite(i, hub int) []byte {
	h := i - i%hub
	return fmt.Appendf(nil, `{"key":"k%d","id":"w%d","ops":[{"op":"upsertVertex","id":"s%d","label":"s","props":{"i":%d,"h":%d}},{"op":"upsertEdge","label":"to","from":"s%d","to":"s%d"}]}`+"\n",
		i%hub, i, i, i, h, i, h)
}
