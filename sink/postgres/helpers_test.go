package postgres

import (
	"os"
	"testing"

	"github.com/graftdb/graft/internal/pgtest"
)

var (
	server   *pgtest.Server
	startErr error
)

func TestMain(m *testing.M) {
	server, startErr = pgtest.Start()
	code := m.Run()
	server.Stop()
	os.Exit(code)
}

func testDSN(t testing.TB) string {
	return pgtest.Require(t, server, startErr).Database(t)
}
