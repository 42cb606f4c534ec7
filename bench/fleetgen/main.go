// Command fleetgen prints the fleet workload as NDJSON writes, for graft ingest.
//
//	go run ./bench/fleetgen -writes 100000 > fleet.ndjson
package main

import (
	"bufio"
	"flag"
	"os"

	"github.com/graftdb/graft/bench"
)

func main() {
	cfg := bench.DefaultFleet()
	n := flag.Int("writes", 100000, "writes to print")
	flag.IntVar(&cfg.Orgs, "orgs", cfg.Orgs, "organizations")
	flag.IntVar(&cfg.DevicesPerOrg, "devices", cfg.DevicesPerOrg, "devices per organization")
	flag.IntVar(&cfg.SoftwarePerOrg, "software", cfg.SoftwarePerOrg, "software titles per organization")
	flag.IntVar(&cfg.SoftwarePerDevice, "per-device", cfg.SoftwarePerDevice, "software entries per device update")
	flag.Float64Var(&cfg.Skew, "skew", cfg.Skew, "Zipf skew over organizations (> 1; 0 for uniform)")
	flag.IntVar(&cfg.Burst, "burst", cfg.Burst, "consecutive updates per organization")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	flag.Parse()
	g := bench.NewFleet(cfg)
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var b []byte
	for i := 0; i < *n; i++ {
		b = append(g.Next().AppendJSON(b[:0]), '\n')
		w.Write(b)
	}
	w.Flush()
}
