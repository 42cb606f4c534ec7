package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/graftdb/graft"
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

// damage publishes n records (ids v1…vn at sequences 1…n) into a stream
// with a record of accepted sequences, stops the server, and changes one
// byte inside the payload of each record named: its checksum no longer
// matches. crashed removes the stream's index, as a kill -9 leaves it
// (the server then rebuilds the stream from its blocks at start).
func damage(t *testing.T, n int, crashed bool, bad ...int) (dir string, cfg jetstream.Config) {
	t.Helper()
	dir = t.TempDir()
	cfg = jetstream.DefaultConfig()
	cfg.Contiguous, cfg.AcceptedFile = true, filepath.Join(dir, "graft-accepted")
	ctx := context.Background()
	emb := startEmbedded(t, dir)
	src, err := jetstream.New(ctx, emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var vals [][]byte
	for i := 1; i <= n; i++ {
		vals = append(vals, fmt.Appendf(nil, `{"ops":[{"op":"upsertVertex","id":"v%d","label":"x"}]}`, i))
	}
	if _, err := pub.Publish(ctx, vals, nil); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	emb.Close()
	msgs := filepath.Join(dir, "jetstream", "$G", "streams", cfg.Stream, "msgs")
	blks, _ := filepath.Glob(filepath.Join(msgs, "*.blk"))
	if len(blks) != 1 {
		t.Fatalf("%d block files, want 1", len(blks))
	}
	b, err := os.ReadFile(blks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range bad {
		at := bytes.Index(b, fmt.Appendf(nil, `"id":"v%d"`, i))
		if at < 0 {
			t.Fatalf("record v%d not found in %s", i, blks[0])
		}
		b[at+7] ^= 0x01 // 'v' becomes 'w'
	}
	if err := os.WriteFile(blks[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	if crashed {
		if err := os.Remove(filepath.Join(msgs, "index.db")); err != nil {
			t.Fatal(err)
		}
	}
	return dir, cfg
}

// readAll reads until nothing comes for a second, acknowledging as it goes:
// the ids delivered and the sequences reported lost.
func readAll(t *testing.T, src *jetstream.Source) (ids map[string]bool, lost []graft.Record) {
	t.Helper()
	ids = map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		recs, err := src.Fetch(ctx)
		cancel()
		if err != nil {
			return ids, lost
		}
		for _, r := range recs {
			if r.Lost != "" {
				lost = append(lost, r)
				continue
			}
			w, err := graft.Decode(r.Value, "", graft.DefaultLimits)
			if err != nil {
				t.Fatalf("seq %d: %v", r.Pos.Offset, err)
			}
			ids[w.Ops[0].ID] = true
		}
		if len(recs) > 0 {
			if err := src.Ack(context.Background(), recs[len(recs)-1].Pos); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("the source never ran dry")
	return nil, nil
}

// A record the server cannot read back is skipped by the consumer; the
// source sees the sequence missing and reports it as a lost record (the
// engine dead-letters it with class lost), never skips it in silence.
func TestDamagedRecordReportedLost(t *testing.T) {
	dir, cfg := damage(t, 2000, false, 1000)
	_, src := startSource(t, dir, cfg)
	ids, lost := readAll(t, src)
	if len(ids) != 1999 || ids["v1000"] {
		t.Fatalf("%d records read (v1000 among them: %v), want the 1,999 undamaged ones", len(ids), ids["v1000"])
	}
	if len(lost) != 1 || lost[0].Ref != "1000-1000" || lost[0].Pos != (graft.Position{Partition: cfg.Stream, Offset: 1000}) ||
		!strings.Contains(lost[0].Lost, "stream sequence 1000 (1 accepted record)") {
		t.Fatalf("lost: %+v", lost)
	}
	if src.LostRecords() != 1 {
		t.Fatalf("LostRecords %d, want 1", src.LostRecords())
	}
}

// After a crash the server rebuilds the stream from its block file and cuts
// it at the first record it cannot read: everything after is gone, and the
// stream's next sequences are given to new records. The record of accepted
// sequences shows the cut: the lost range is reported once, at start, and
// the new records are read as usual; a second restart reports nothing.
func TestStreamCutAtRestartReportedLost(t *testing.T) {
	dir, cfg := damage(t, 2000, true, 1500)
	ctx := context.Background()
	emb := startEmbedded(t, dir)
	src, err := jetstream.New(ctx, emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, [][]byte{[]byte(`{"ops":[{"op":"upsertVertex","id":"new","label":"x"}]}`)}, nil); err != nil {
		t.Fatal(err)
	}
	ids, lost := readAll(t, src)
	if len(ids) != 1500 || !ids["v1499"] || ids["v1500"] || !ids["new"] {
		t.Fatalf("%d records read (v1499 %v, v1500 %v, new %v), want v1-v1499 and new", len(ids), ids["v1499"], ids["v1500"], ids["new"])
	}
	if len(lost) != 1 || lost[0].Ref != "1500-2000" || lost[0].Pos.Partition == cfg.Stream ||
		!strings.Contains(lost[0].Lost, "stream sequences 1500-2000 (501 accepted records)") {
		t.Fatalf("lost: %+v", lost)
	}
	pub.Close()
	src.Close()
	emb.Close()

	_, src = startSource(t, dir, cfg)
	if ids, lost := readAll(t, src); len(ids) != 0 || len(lost) != 0 {
		t.Fatalf("second restart: %d records, lost %+v; want nothing", len(ids), lost)
	}
}

// damageConsumerState overwrites the durable consumer's state file with
// garbage, as a bad disk would.
func damageConsumerState(t *testing.T, dir string, cfg jetstream.Config) {
	t.Helper()
	p := filepath.Join(dir, "jetstream", "$G", "streams", cfg.Stream, "obs", cfg.Durable, "o.dat")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0x55
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A damaged consumer state is named as such (it was nats-server's bare
// "API error … err_code=10012"); once reset, the consumer reads the stream
// again from the first record it holds.
func TestDamagedConsumerStateNamed(t *testing.T) {
	dir, cfg := damage(t, 100, false)
	emb, src := startSource(t, dir, cfg)
	if ids, _ := readAll(t, src); len(ids) != 100 {
		t.Fatalf("%d records read, want 100", len(ids))
	}
	src.Close()
	emb.Close()
	damageConsumerState(t, dir, cfg)

	emb = startEmbedded(t, dir)
	defer emb.Close()
	_, err := jetstream.New(context.Background(), emb.Conn(), cfg, nil)
	if !errors.Is(err, jetstream.ErrConsumerStateDamaged) || !strings.Contains(err.Error(), "consumer graft on stream GRAFT") || !strings.Contains(err.Error(), "err_code=10012") {
		t.Fatalf("New: %v", err)
	}
	if _, err := emb.ResetConsumerState(cfg.Stream, cfg.Durable); err != nil {
		t.Fatal(err)
	}
	src, err = jetstream.New(context.Background(), emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if ids, lost := readAll(t, src); len(ids) != 100 || len(lost) != 0 {
		t.Fatalf("after the reset: %d records read, %d lost; want the 100 the stream holds", len(ids), len(lost))
	}
}

// Graft trims acknowledged records from the embedded stream; nats-server
// writes the consumer's ack floor to disk lazily, so after a kill -9 the
// floor can be behind the trim. The records between were committed, then
// trimmed: they are not lost, and nothing may say so (CI's crash test once
// dead-lettered 159 committed records as lost). Here the consumer is set
// back to its first sequence after the trim, as such a crash leaves it.
func TestTrimmedRecordsBehindTheAckFloorAreNotLost(t *testing.T) {
	for _, marked := range []bool{true, false} {
		t.Run(fmt.Sprintf("trimmed_file=%v", marked), func(t *testing.T) {
			dir, cfg := damage(t, 2500, false)
			cfg.TrimAcked = true
			if marked {
				cfg.TrimmedFile = filepath.Join(dir, "graft-trimmed")
			}
			ackFloorBehindTrim(t, dir, cfg)
		})
	}
}

// readTrimmed reads and acknowledges the 2,500 records damage wrote (the
// source trims them as it goes), closes the source, and returns the server
// and a raw handle on the stream.
func readTrimmed(t *testing.T, dir string, cfg jetstream.Config) (*jetstream.Embedded, natsjs.Stream) {
	t.Helper()
	emb, src := startSource(t, dir, cfg)
	if ids, lost := readAll(t, src); len(ids) != 2500 || len(lost) != 0 {
		t.Fatalf("%d records read, %d lost; want 2,500 and none", len(ids), len(lost))
	}
	src.Close()
	js, err := natsjs.New(emb.Conn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	return emb, st
}

// publish publishes upserts of the ids.
func publish(t *testing.T, emb *jetstream.Embedded, cfg jetstream.Config, ids ...string) {
	t.Helper()
	ctx := context.Background()
	pub, err := jetstream.NewPublisher(ctx, emb.Conn(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var vals [][]byte
	for _, id := range ids {
		vals = append(vals, fmt.Appendf(nil, `{"ops":[{"op":"upsertVertex","id":"%s","label":"x"}]}`, id))
	}
	if _, err := pub.Publish(ctx, vals, nil); err != nil {
		t.Fatal(err)
	}
}

// reopen opens a new source on emb (closed when the test ends).
func reopen(t *testing.T, emb *jetstream.Embedded, cfg jetstream.Config) *jetstream.Source {
	t.Helper()
	src, err := jetstream.New(context.Background(), emb.Conn(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func ackFloorBehindTrim(t *testing.T, dir string, cfg jetstream.Config) {
	emb, st := readTrimmed(t, dir, cfg)
	first := st.CachedInfo().State.FirstSeq
	if first <= 1000 {
		t.Fatalf("the stream starts at %d: nothing was trimmed", first)
	}
	if _, err := st.ResetConsumerToSequence(context.Background(), cfg.Durable, 500); err != nil {
		t.Fatal(err)
	}
	src := reopen(t, emb, cfg)
	publish(t, emb, cfg, "new")
	ids, lost := readAll(t, src)
	if len(lost) != 0 {
		t.Fatalf("trimmed records reported lost: %+v", lost)
	}
	// What was not trimmed yet comes again (committed, replayed: harmless);
	// the new record comes once.
	if want := 2500 - int(first) + 1 + 1; len(ids) != want || !ids["new"] {
		t.Fatalf("%d records read after the restart (new: %v), want the %d the stream holds", len(ids), ids["new"], want)
	}
}

// With the record of the trim, a stream that starts past it lost records
// Graft never removed (here removed behind its back, as a damaged first
// block would, leaving the consumer where it was): they are reported, and
// what follows is read.
func TestStreamStartPastTheTrimReportedLost(t *testing.T) {
	dir, cfg := damage(t, 2500, false)
	cfg.TrimAcked, cfg.TrimmedFile = true, filepath.Join(dir, "graft-trimmed")
	emb, st := readTrimmed(t, dir, cfg)
	var more []string
	for i := 2501; i <= 2700; i++ {
		more = append(more, fmt.Sprintf("v%d", i))
	}
	publish(t, emb, cfg, more...)
	ctx := context.Background()
	if err := st.Purge(ctx, natsjs.WithPurgeSequence(2601)); err != nil {
		t.Fatal(err)
	}
	// The purge moved the consumer with it; a damaged block would not.
	if _, err := st.ResetConsumerToSequence(ctx, cfg.Durable, 2501); err != nil {
		t.Fatal(err)
	}
	src := reopen(t, emb, cfg)
	ids, lost := readAll(t, src)
	if len(lost) != 1 || lost[0].Ref != "2501-2600" || !strings.Contains(lost[0].Lost, "(100 accepted records)") {
		t.Fatalf("lost: %+v", lost)
	}
	if len(ids) != 100 || !ids["v2601"] || !ids["v2700"] {
		t.Fatalf("%d records read, want v2601-v2700", len(ids))
	}
}
