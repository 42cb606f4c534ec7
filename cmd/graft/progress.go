package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/graftdb/graft/engine"
)

// startProgress redraws a progress line on w every half second, when w is a
// terminal. The returned function stops it and clears the line.
func startProgress(w io.Writer, quiet bool, line func() string) (stop func()) {
	f, ok := w.(*os.File)
	if quiet || !ok || !isTerminal(f) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(f, "\r\033[K%s", line())
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func progressLine(s engine.Snapshot, d time.Duration, read, size int64) string {
	pct := ""
	if size > 0 {
		pct = fmt.Sprintf("%3.0f%% read · ", 100*float64(read)/float64(size))
	}
	rate := 0.0
	if d > 0 {
		rate = float64(s.Committed+s.DeadLetters) / d.Seconds()
	}
	return fmt.Sprintf("%s%d writes · %d committed · %d pending · %.0f writes/s · %d eliminated · %d coalesced · %d dead letters",
		pct, s.Records, s.Committed, s.Records-s.Committed-s.DeadLetters, rate, s.Eliminated, s.Coalesced, s.DeadLetters)
}
