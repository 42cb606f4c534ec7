// Package pgtest starts a throwaway PostgreSQL server for tests: initdb into
// a temporary directory, a free loopback port, stopped at the end. It never
// touches a server already running on the machine.
//
// GRAFT_TEST_POSTGRES=postgres://… uses that server instead. Without either,
// tests skip — except under CI=true, where a missing PostgreSQL fails them.
package pgtest

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/graftdb/graft/internal/freeport"
)

// Server is a running test server.
type Server struct {
	DSN  string
	dir  string
	bin  string
	asPG bool
}

// Start starts a server (call from TestMain; Stop it after m.Run).
func Start() (*Server, error) {
	if dsn := os.Getenv("GRAFT_TEST_POSTGRES"); dsn != "" {
		return &Server{DSN: dsn}, nil
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			bins = []string{p}
		}
	}
	if len(bins) == 0 {
		return nil, fmt.Errorf("PostgreSQL is not installed (no initdb): apt-get install postgresql, or set GRAFT_TEST_POSTGRES")
	}
	sort.Strings(bins)
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "graft-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	// initdb refuses to run as root: run the server as the postgres user.
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		pg, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		s.asPG = true
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "graft", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 -c deadlock_timeout=50ms", port, dir)
	if out, err := s.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.DSN = fmt.Sprintf("postgres://graft@127.0.0.1:%d/postgres?sslmode=disable", port)
	return s, nil
}

func (s *Server) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, tool)
	var cmd *exec.Cmd
	if s.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	if s == nil || s.dir == "" {
		return
	}
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

// Require returns the server, or skips (fails under CI=true) when startErr
// says there is none.
func Require(t testing.TB, s *Server, startErr error) *Server {
	t.Helper()
	if startErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI=true: %v", startErr)
		}
		t.Skipf("no PostgreSQL (CI=true makes this a failure): %v", startErr)
	}
	return s
}

// Database creates a fresh database for one test and returns its DSN.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	name := fmt.Sprintf("t_%x_%d", h.Sum64(), dbSeq.Add(1))
	if err := createDB(s.DSN, name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return strings.Replace(s.DSN, "/postgres?", "/"+name+"?", 1)
}

var dbSeq atomic.Int64

func createDB(dsn, name string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
