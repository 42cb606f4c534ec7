package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

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

func createDB(dsn, name string) error {
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), fmt.Sprintf(`CREATE DATABASE %q`, name))
	return err
}

func testDSN(t testing.TB) string {
	return pgtest.Require(t, server, startErr).Database(t, createDB)
}
