package memgraph

import (
	"context"
	"sync"

	"github.com/graftdb/graft"
)

// Letters is a dead-letter store in memory (graft.DeadLetters), safe for
// concurrent use: tests read back what was dead-lettered.
type Letters struct {
	mu  sync.Mutex
	got []*graft.Letter
}

// Append implements graft.DeadLetters.
func (l *Letters) Append(_ context.Context, ls []*graft.Letter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, ls...)
	return nil
}

// All returns the letters stored so far, in order.
func (l *Letters) All() []*graft.Letter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*graft.Letter(nil), l.got...)
}
