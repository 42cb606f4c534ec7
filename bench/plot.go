package bench

import (
	"fmt"
	"html"
	"io"
	"math"
)

// WriteSVG draws two bar charts, writes/s and p99 latency per strategy.
func WriteSVG(w io.Writer, results []Result) error {
	const barW, gap, chartH, left, top = 70, 30, 220, 70, 40
	width := left + len(results)*(barW+gap) + gap
	height := 2*(chartH+top+60) + 20
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width*2, height/2+40)
	chart := func(x0 int, title string, value func(Result) float64, unit string) {
		maxV := 0.0
		for _, r := range results {
			maxV = math.Max(maxV, value(r))
		}
		if maxV == 0 {
			maxV = 1
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", x0+left, top-15, html.EscapeString(title))
		fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x0+left, top+chartH, x0+width, top+chartH)
		for i, r := range results {
			v := value(r)
			h := int(float64(chartH) * v / maxV)
			x := x0 + left + gap + i*(barW+gap)
			color := "#4c78a8"
			if !r.Correct {
				color = "#e45756"
			}
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, top+chartH-h, barW, h, color)
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%.0f %s</text>`+"\n", x+barW/2, top+chartH-h-5, v, unit)
			fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", x+barW/2, top+chartH+18, html.EscapeString(r.Strategy))
		}
	}
	chart(0, "writes/s (higher is better; red: graph not correct)", func(r Result) float64 { return r.WritesPerSec }, "")
	chart(width, "p99 transaction latency, ms (lower is better)", func(r Result) float64 { return r.P99ms }, "ms")
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}
