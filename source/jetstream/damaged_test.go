package jetstream_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graftdb/graft/source/jetstream"
)

// A damaged stream on disk is reported, naming the directory and what to
// do, instead of "did not start" alone; nothing is read from it.
func TestDamagedStreamReported(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	emb := startEmbedded(t, dir)
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), jetstream.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var vals [][]byte
	for i := range 2000 {
		vals = append(vals, fmt.Appendf(nil, `{"ops":[{"op":"upsertVertex","id":"v%d","label":"x"}]}`, i))
	}
	if _, err := pub.Publish(ctx, vals, nil); err != nil {
		t.Fatal(err)
	}
	emb.Close()
	blks, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "GRAFT", "msgs", "*.blk"))
	if len(blks) == 0 {
		t.Fatal("no block file")
	}
	b, _ := os.ReadFile(blks[0])
	for _, off := range []int{len(b) / 3, len(b) / 2, 2 * len(b) / 3} {
		b[off] ^= 0xff
	}
	os.WriteFile(blks[0], b, 0o644)
	e, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Dir: dir, StartTimeout: 3 * time.Second})
	if err == nil {
		// A nats-server that restores what it can would start here; Graft
		// does not yet read the damage from the stream's state
		// (StreamInfo.State.Lost), so that would be silent.
		e.Close()
		t.Fatal("the server started on the damaged stream, and nothing reports the damage")
	}
	if !strings.Contains(err.Error(), "may be damaged") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("%v", err)
	}
}
