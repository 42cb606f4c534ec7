package jetstream

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The accepted file holds one decimal number, the highest stream sequence
// the server acknowledged to a publisher of this process, padded to a fixed
// width so that each update is one small write in place.

const acceptedWidth = 20

// readMark reads a mark file (the accepted or the trimmed one); known is
// false when it does not exist yet (a data dir from before it).
func readMark(path string) (seq uint64, known bool, err error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %q is not a sequence number", path, b)
	}
	return n, true, nil
}

// writeMark replaces a mark file's number and syncs it: a power loss must
// not leave the mark behind what the server did after it.
func writeMark(path string, seq uint64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(acceptedLine(seq), 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func acceptedLine(seq uint64) []byte {
	return fmt.Appendf(nil, "%*d\n", acceptedWidth, seq)
}

// acceptedMark keeps the file up to date as publishes are acknowledged.
type acceptedMark struct {
	mu   sync.Mutex
	f    *os.File
	high uint64
}

// openAcceptedMark opens the file for this run's publishes: the first one
// overwrites it, so the source must have compared it with the stream
// before (New, then NewPublisher).
func openAcceptedMark(path string) (*acceptedMark, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("record of accepted sequences: %w", err)
	}
	return &acceptedMark{f: f}, nil
}

// advance records seq if it is the highest yet. The write goes to the page
// cache (it survives the process being killed; with sync_always the
// records themselves survive power loss, the mark may lag behind them,
// which only makes the check at start miss a loss, never invent one).
func (m *acceptedMark) advance(seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq <= m.high {
		return nil
	}
	if _, err := m.f.WriteAt(acceptedLine(seq), 0); err != nil {
		return fmt.Errorf("record of accepted sequences %s: %w", m.f.Name(), err)
	}
	m.high = seq
	return nil
}

func (m *acceptedMark) close() error { return m.f.Close() }
