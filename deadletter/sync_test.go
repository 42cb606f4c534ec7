package deadletter

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/graftdb/graft"
)

// failingSync is the dead-letter file with a disk whose fsync fails (as a
// disk full or gone does).
type failingSync struct {
	file
	syncs int
}

func (f *failingSync) Sync() error {
	f.syncs++
	return errors.New("injected: fsync failed")
}

// Append returns nil only once the letters are on disk: a sync that fails
// is an error (the engine then keeps the records and retries), and every
// Append syncs. Without the sync, letters acknowledged to the source could
// vanish with a power cut.
func TestAppendSyncs(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "deadletters.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fs := &failingSync{file: d.f}
	d.f = fs
	l := &graft.Letter{Position: graft.Position{Partition: "p", Offset: 1}, Class: "permanent", Error: "x"}
	if err := d.Append(context.Background(), []*graft.Letter{l}); err == nil || fs.syncs != 1 {
		t.Fatalf("Append with a failing fsync: %v after %d syncs, want an error after 1", err, fs.syncs)
	}
}
