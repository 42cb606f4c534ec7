// Package virtuosotest starts a throwaway Virtuoso (Debian's
// virtuoso-opensource) for tests: a fresh database in a temporary directory,
// the SQL and HTTP ports on free loopback ports, SPARQL updates granted to
// the SPARQL user. It never touches a server already running. Without
// virtuoso-t the tests skip — except under CI=true, where they fail.
package virtuosotest

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/graftdb/graft/internal/freeport"
)

// Server is a running Virtuoso.
type Server struct {
	// Endpoint is the SPARQL endpoint: http://127.0.0.1:PORT/sparql.
	Endpoint string
	dir      string
	sqlPort  int
	cmd      *exec.Cmd
}

const ini = `[Database]
DatabaseFile       = %[1]s/virtuoso.db
ErrorLogFile       = %[1]s/virtuoso.log
LockFile           = %[1]s/virtuoso.lck
TransactionFile    = %[1]s/virtuoso.trx
xa_persistent_file = %[1]s/virtuoso.pxa
ErrorLogLevel      = 7
FileExtend         = 200
MaxCheckpointRemap = 2000
Striping           = 0
TempStorage        = TempDatabase
[TempDatabase]
DatabaseFile       = %[1]s/virtuoso-temp.db
TransactionFile    = %[1]s/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping           = 0
[Parameters]
ServerPort         = 127.0.0.1:%[2]d
DisableUnixSocket  = 1
CaseMode           = 2
DirsAllowed        = ., /usr/share/virtuoso-opensource-7/vad
NumberOfBuffers    = 10000
MaxDirtyBuffers    = 6000
CheckpointInterval = 60
[HTTPServer]
ServerPort           = 127.0.0.1:%[3]d
ServerRoot           = /var/lib/virtuoso-opensource-7/vsp
MaxClientConnections = 10
ServerThreads        = 10
Charset              = UTF-8
[SPARQL]
ResultSetMaxRows      = %[4]d
MaxQueryExecutionTime = 60
`

// DefaultMaxRows is Virtuoso's own default ResultSetMaxRows: a SELECT
// returns at most that many rows, and says so only in a response header.
const DefaultMaxRows = 10000

// Start starts a server for the test (or the package: call it from
// TestMain with a testing.TB that fails the run) and stops it at cleanup,
// with Virtuoso's default row cap.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartCapped(t, DefaultMaxRows)
}

// StartCapped starts a server whose SELECTs return at most maxRows rows
// (ResultSetMaxRows).
func StartCapped(t testing.TB, maxRows int) *Server {
	t.Helper()
	bin, err := exec.LookPath("virtuoso-t")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("virtuoso-t is required under CI=true (apt-get install virtuoso-opensource; scripts/test installs it)")
		}
		t.Skip("no virtuoso-t (CI=true makes this a failure)")
	}
	isql, err := exec.LookPath("isql-vt")
	if err != nil {
		t.Fatal("virtuoso-t without isql-vt: reinstall virtuoso-opensource")
	}
	s := &Server{dir: t.TempDir()}
	s.sqlPort, err = freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(s.dir, "virtuoso.ini")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, ini, s.dir, s.sqlPort, httpPort, maxRows), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "+foreground", "+configfile", cfg)
	s.cmd.Dir = s.dir
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("virtuoso-t: %v", err)
	}
	t.Cleanup(s.Stop)
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/sparql"
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "virtuoso.log"))
			t.Fatalf("virtuoso did not serve %s within 60s: %v\n%s", s.Endpoint, err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := exec.Command(isql, "127.0.0.1:"+strconv.Itoa(s.sqlPort), "dba", "dba", `exec=GRANT SPARQL_UPDATE TO "SPARQL";`).CombinedOutput()
	if err != nil {
		t.Fatalf("grant SPARQL_UPDATE: %v\n%s", err, out)
	}
	return s
}

// Stop kills the server and removes its database. Start registers it as a
// cleanup; call it yourself when the server outlives one test.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
		os.RemoveAll(s.dir)
	}
}
