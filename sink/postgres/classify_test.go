package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/graftdb/graft"
)

// A real deadlock from the server is classified as a conflict; so are a lock
// timeout and a serialization failure, and a foreign key violation is a
// missing endpoint.
func TestClassifyRealErrors(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	c1, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	c2, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	c1.Exec(ctx, `CREATE TABLE dl (id int PRIMARY KEY); INSERT INTO dl VALUES (1), (2)`)
	t1, _ := c1.Begin(ctx)
	t2, _ := c2.Begin(ctx)
	t1.Exec(ctx, `UPDATE dl SET id = id WHERE id = 1`)
	t2.Exec(ctx, `UPDATE dl SET id = id WHERE id = 2`)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); _, errs[0] = t1.Exec(ctx, `UPDATE dl SET id = id WHERE id = 2`) }()
	go func() { defer wg.Done(); _, errs[1] = t2.Exec(ctx, `UPDATE dl SET id = id WHERE id = 1`) }()
	wg.Wait()
	t1.Rollback(ctx)
	t2.Rollback(ctx)
	deadlocks := 0
	for _, err := range errs {
		if err != nil {
			if c := classify(err); c != graft.Conflict {
				t.Fatalf("deadlock %v classified %s", err, c)
			}
			deadlocks++
		}
	}
	if deadlocks != 1 {
		t.Fatalf("%d deadlock errors, want 1: %v", deadlocks, errs)
	}
	for sql, want := range map[string]graft.Class{
		`SET lock_timeout = '1ms'; BEGIN; LOCK TABLE dl IN ACCESS EXCLUSIVE MODE NOWAIT`:                       graft.Conflict,
		`CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE ch (p int REFERENCES p); INSERT INTO ch VALUES (7)`: graft.MissingEndpoint,
		`SELECT 1/0`:                           graft.Permanent,
		`SELECT * FROM no_such_table`:          graft.Fatal,
		`SELECT repeat('x', 1073741824)::text`: graft.TooLarge,
	} {
		conn, _ := pgx.Connect(ctx, dsn)
		if sql[:3] == "SET" {
			lock, _ := c2.Begin(ctx)
			lock.Exec(ctx, `LOCK TABLE dl IN ACCESS EXCLUSIVE MODE`)
			_, err = conn.Exec(ctx, sql)
			lock.Rollback(ctx)
		} else {
			_, err = conn.Exec(ctx, sql)
		}
		conn.Close(ctx)
		if err == nil || classify(err) != want {
			t.Errorf("%s: %v classified %s, want %s", sql, err, classify(err), want)
		}
	}
}
