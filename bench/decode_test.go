package bench_test

import (
	"testing"

	"github.com/graftdb/graft"
)

// Decoding is on every source's hot path.
func BenchmarkDecode(b *testing.B) {
	for name, ws := range workloads() {
		raws := make([][]byte, 0, 256)
		size := 0
		for _, w := range ws[len(ws)-256:] {
			r := w.AppendJSON(nil)
			raws = append(raws, r)
			size += len(r)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size / len(raws)))
			for i := 0; i < b.N; i++ {
				if _, err := graft.Decode(raws[i%len(raws)], "", graft.DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
