// Command sqlitedrivers measures upsert throughput of the two pure-Go SQLite
// drivers on the statements Graft's embedded store issues. It lives in its own
// module so that the driver not chosen stays out of Graft's module graph.
//
//	cd bench/sqlitedrivers && go run . -n 200000
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	_ "github.com/ncruces/go-sqlite3/driver"
	_ "modernc.org/sqlite"
)

const schema = `
CREATE TABLE vertices (id TEXT PRIMARY KEY, label TEXT NOT NULL, props TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE edges (label TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL, PRIMARY KEY (src, label, dst)) WITHOUT ROWID;`

const upsertVertex = `INSERT INTO vertices(id, label, props) VALUES (?, ?, ?)
ON CONFLICT(id) DO UPDATE SET props = json_patch(props, excluded.props) RETURNING label`

const upsertEdge = `INSERT INTO edges(label, src, dst, props) VALUES (?, ?, ?, ?)
ON CONFLICT(src, label, dst) DO UPDATE SET props = json_patch(props, excluded.props)`

func main() {
	n := flag.Int("n", 200000, "upserts per driver (half vertices, half edges)")
	batch := flag.Int("batch", 1000, "upserts per transaction")
	flag.Parse()
	for _, drv := range []struct{ name, dsn string }{
		{"sqlite", "file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"},
		{"sqlite3", "file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"},
	} {
		dir, _ := os.MkdirTemp("", "drv")
		db, err := sql.Open(drv.name, fmt.Sprintf(drv.dsn, filepath.Join(dir, "g.db")))
		if err != nil {
			log.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(schema); err != nil {
			log.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < *n; i += *batch {
			tx, err := db.Begin()
			if err != nil {
				log.Fatal(err)
			}
			sv, _ := tx.Prepare(upsertVertex)
			se, _ := tx.Prepare(upsertEdge)
			for j := i; j < i+*batch; j += 2 {
				var label string
				v := fmt.Sprintf("v%d", j%50000)
				if err := sv.QueryRow(v, "software", `{"name":"x","n":`+fmt.Sprint(j)+`}`).Scan(&label); err != nil {
					log.Fatal(err)
				}
				if _, err := se.Exec("installed", v, fmt.Sprintf("v%d", (j*7)%50000), `{}`); err != nil {
					log.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				log.Fatal(err)
			}
		}
		el := time.Since(start)
		name := map[string]string{"sqlite": "modernc.org/sqlite", "sqlite3": "github.com/ncruces/go-sqlite3"}[drv.name]
		fmt.Printf("%-32s %8.0f upserts/s (%d upserts, %d per tx)\n", name, float64(*n)/el.Seconds(), *n, *batch)
		db.Close()
		os.RemoveAll(dir)
	}
}
