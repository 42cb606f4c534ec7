package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/graftdb/graft"
	"github.com/graftdb/graft/internal/awstest"
	"github.com/graftdb/graft/internal/model"
	"github.com/graftdb/graft/sink/sqlite"
)

// Two graft run processes share a 4-shard stream through the lease table:
// the second balances the leases 2/2 by handoff, a shard is split
// mid-stream, one process is killed with SIGKILL and restarted. A trigger
// logs every write of a key's counter vertex in commit order: until the
// kill no key's counter ever goes back (order per key across handoffs and
// the split; no record applied twice); after it, the killed process's
// shards are replayed from their checkpoints. The final graph equals an
// independent model, and the leases end balanced over both processes.
func TestKinesisLeasesAcrossProcesses(t *testing.T) {
	bin := buildGraft(t)
	const stream = "leases"
	k := startKinesis(t, stream, 4)
	ctx, kc, kEndpoint, dEndpoint := context.Background(), k.kc, k.kEndpoint, k.dEndpoint
	// The store, with a history of every counter write in commit order.
	store, hist := k.store, k.graph
	// The triggers also burn a little CPU per write (a recursive count),
	// so that records are still in flight when the leases move and a
	// handoff has to drain them.
	const log = `INSERT INTO history(id, seq) VALUES (new.id, json_extract(new.props, '$.seq'));
		SELECT count(*) FROM (WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000) SELECT i FROM r);`
	for _, q := range []string{
		`CREATE TABLE history (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, seq INTEGER)`,
		`CREATE TRIGGER hist_ins AFTER INSERT ON vertices WHEN new.label = 'counter' BEGIN ` + log + ` END`,
		`CREATE TRIGGER hist_upd AFTER UPDATE ON vertices WHEN new.label = 'counter' BEGIN ` + log + ` END`,
	} {
		if _, err := hist.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	// 32 keys, each a counter vertex whose seq is the record's number in
	// the key, and an edge to one of its 5 neighbours carrying the same
	// seq: applied out of order, a key's counter or an edge is wrong.
	const keys, perKey = 32, 145
	want := model.New()
	var batches [][]*graft.Write // one slice per "round" of every key
	for i := 0; i < perKey; i++ {
		var round []*graft.Write
		for k := 0; k < keys; k++ {
			line := fmt.Sprintf(`{"key":"k%d","ops":[{"op":"upsertVertex","id":"c:%d","label":"counter","props":{"seq":%d}},`+
				`{"op":"upsertVertex","id":"n:%d:%d","label":"neighbour"},{"op":"upsertEdge","label":"saw","from":"c:%d","to":"n:%d:%d","props":{"seq":%d}}]}`,
				k, k, i, k, i%5, k, k, i%5, i)
			w, err := graft.Decode([]byte(line), "", graft.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if err := want.ApplyWrite(w); err != nil {
				t.Fatal(err)
			}
			round = append(round, w)
		}
		batches = append(batches, round)
	}
	put := func(from, to int) {
		for _, round := range batches[from:to] {
			var entries []types.PutRecordsRequestEntry
			for _, w := range round {
				entries = append(entries, types.PutRecordsRequestEntry{Data: w.AppendJSON(nil), PartitionKey: aws.String(w.Key)})
			}
			out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
			if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
				t.Fatalf("put records: %v", err)
			}
		}
	}
	// reached waits until every key's counter is at seq want.
	reached := func(want int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			var n int
			if err := hist.QueryRow(`SELECT count(*) FROM vertices WHERE label = 'counter' AND json_extract(props, '$.seq') = ?`, want).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == keys {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d keys reached seq %d", n, keys, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	owners := k.owners
	waitOwners := func(what string, ok func(map[string]int) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			m := owners()
			if ok(m) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("leases %v: %s", m, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	source := "kinesis://" + stream + "?region=" + awstest.Region + "&endpoint=" + kEndpoint + "&dynamodb_endpoint=" + dEndpoint + "&max_records=25&lease_ttl=2s"
	start := func(worker string) *proc {
		return startRun(t, bin, t.TempDir(), "--source", source+"&worker="+worker, "--sink", "sqlite:"+store, "--cache", "off")
	}
	counted := func() (n int) {
		if err := hist.QueryRow(`SELECT count(*) FROM history`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	put(0, 60)
	a := start("a")
	defer func() { a.cmd.Process.Kill(); a.cmd.Wait() }()
	if m := owners(); m["a"] != 4 {
		t.Fatalf("leases %v: want a to hold all 4", m)
	}
	b := start("b")
	defer func() { b.cmd.Process.Kill(); b.cmd.Wait() }()
	if n := counted(); n >= 60*keys {
		t.Fatalf("a applied all %d records before b started: nothing in flight to hand over", n)
	}
	waitOwners("want 2 each", func(m map[string]int) bool { return m["a"] == 2 && m["b"] == 2 })
	t.Logf("leases balanced with %d of %d records applied", counted(), 60*keys)
	put(60, 100)

	// Split a shard with records on both sides of the split.
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	first := shards.Shards[0]
	lo, _ := new(big.Int).SetString(aws.ToString(first.HashKeyRange.StartingHashKey), 10)
	hi, _ := new(big.Int).SetString(aws.ToString(first.HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: first.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	awstest.WaitStream(t, kc, stream)
	put(100, 115)
	reached(114)
	var mark int64
	if err := hist.QueryRow(`SELECT coalesce(max(n), 0) FROM history`).Scan(&mark); err != nil {
		t.Fatal(err)
	}
	if back := regressions(t, hist, 0, mark); back != "" {
		t.Fatalf("before the kill, a key's counter went back (out of order or applied twice): %s", back)
	}

	// SIGKILL a: its leases expire and b takes them; then a restarts and
	// the leases balance again.
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.cmd.Wait()
	killed := time.Now()
	put(115, 130)
	waitOwners("want b to take a's leases", func(m map[string]int) bool { return m["a"] == 0 && m["b"] == 5 })
	t.Logf("b held all 5 open shards %v after the SIGKILL (lease_ttl 2s)", time.Since(killed).Round(100*time.Millisecond))
	a = start("a2")
	restarted := time.Now()
	put(130, perKey)
	reached(perKey - 1)
	waitOwners("want 5 open shards balanced over a2 and b", func(m map[string]int) bool {
		return m["a2"]+m["b"] == 5 && m["a2"] >= 2 && m["b"] >= 2
	})
	t.Logf("balanced %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
	for _, p := range []*proc{a, b} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("after SIGTERM: %v\n%s", err, p.errs)
		}
	}
	if m := owners(); len(m) != 1 || m[""] != 5 {
		t.Fatalf("after both stopped, leases %v: want the 5 open shards free\n%s\n%s", m, a.errs, b.errs)
	}
	exp := graftCmd(t, nil, "export", "--data-dir", t.TempDir(), "--sink", "sqlite:"+store)
	if d := diffExport(t, exp.stdout, want); d != "" {
		t.Fatalf("graph differs from the model:\n%s", d)
	}
}

// regressions reports the first history entry, in (from, to], where a key's
// counter is lower than or equal to one already logged for it.
func regressions(t *testing.T, db *sql.DB, from, to int64) string {
	t.Helper()
	rows, err := db.Query(`SELECT n, id, seq FROM history WHERE n > ? AND n <= ? ORDER BY n`, from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	last := map[string]int64{}
	for rows.Next() {
		var n, seq int64
		var id string
		if err := rows.Scan(&n, &id, &seq); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[id]; ok && seq <= prev {
			return fmt.Sprintf("entry %d: %s at seq %d after seq %d", n, id, seq, prev)
		}
		last[id] = seq
	}
	return ""
}

// kinesisRig is kinesalite and dynalite with a stream, and a SQLite store
// for graft run processes to share.
type kinesisRig struct {
	t                    *testing.T
	stream               string
	kEndpoint, dEndpoint string
	kc                   *kinesis.Client
	db                   *dynamodb.Client
	store                string  // the SQLite file
	graph                *sql.DB // open on it, for the test's queries
}

func startKinesis(t *testing.T, stream string, shards int) *kinesisRig {
	t.Helper()
	r := &kinesisRig{t: t, stream: stream, kEndpoint: awstest.Kinesalite(t), dEndpoint: awstest.Dynalite(t)}
	awstest.UseEnv(t)
	r.kc, r.db = awstest.Kinesis(t, r.kEndpoint), awstest.DynamoDB(t, r.dEndpoint)
	awstest.CreateStream(t, r.kc, stream, shards)
	r.store = filepath.Join(t.TempDir(), "graph.db")
	sk, err := sqlite.Open(context.Background(), r.store)
	if err != nil {
		t.Fatal(err)
	}
	sk.Close()
	if r.graph, err = sql.Open("sqlite", r.store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.graph.Close() })
	return r
}

// owners counts the open shards' leases per owner ("": none).
func (r *kinesisRig) owners() map[string]int {
	r.t.Helper()
	out, err := r.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("graft-" + r.stream), ConsistentRead: aws.Bool(true)})
	if err != nil {
		r.t.Fatal(err)
	}
	m := map[string]int{}
	for _, it := range out.Items {
		if cp, _ := it["checkpoint"].(*ddbtypes.AttributeValueMemberS); cp != nil && cp.Value == "SHARD_END" {
			continue
		}
		if o, _ := it["owner"].(*ddbtypes.AttributeValueMemberS); o != nil {
			m[o.Value]++
		} else {
			m[""]++
		}
	}
	return m
}
