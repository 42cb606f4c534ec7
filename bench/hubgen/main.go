// Command hubgen prints the late-hub workload (issue 17, item 1) as NDJSON
// writes, for graft ingest or an HTTP client: write i has key k(i mod H),
// upserts s_i and an edge s_i → s_(i − i mod H), the hub, which write
// i − i mod H (key k0) creates. With -late L every hub write comes L
// records after its place, behind its own dependents.
//
//	go run ./bench/hubgen -writes 60000 -late 15000 > late.ndjson
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/graftdb/graft/bench"
)

func main() {
	n := flag.Int("writes", 60000, "writes to print")
	hub := flag.Int("hub", 1000, "writes per hub (H)")
	late := flag.Int("late", 0, "records each hub write comes after its place (0: in order)")
	flag.Parse()
	if *n < 1 || *hub < 1 || *late < 0 {
		fmt.Fprintln(os.Stderr, "hubgen: -writes and -hub must be positive, -late at least 0")
		os.Exit(2)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	write := func(i int) { out.Write(bench.HubWrite(i, *hub)) }
	due := map[int][]int{} // position → hub writes printed after it
	for i := range *n {
		if i%*hub == 0 && *late > 0 {
			p := min(i+*late, *n-1)
			due[p] = append(due[p], i)
		} else {
			write(i)
		}
		for _, h := range due[i] {
			write(h)
		}
	}
}
