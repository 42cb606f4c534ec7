// Package awstest starts the AWS emulators for tests — kinesalite (Kinesis)
// and dynalite (DynamoDB), installed by scripts/test with npm ci into
// test/emulators — on free loopback ports, in memory, and stops them after.
// Without them the tests skip, except under CI=true, where they fail.
package awstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/graftdb/graft/internal/freeport"
)

// Credentials the emulators accept (any).
const (
	AccessKey = "graft-test"
	SecretKey = "graft-test-secret"
	Region    = "us-east-1"
)

func modules() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "test", "emulators", "node_modules")
}

// Kinesalite starts kinesalite and returns its endpoint.
func Kinesalite(t testing.TB) string {
	return start(t, "kinesalite", "{createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100}")
}

// Dynalite starts dynalite and returns its endpoint.
func Dynalite(t testing.TB) string {
	return start(t, "dynalite", "{createTableMs: 0, deleteTableMs: 0, updateTableMs: 0}")
}

// start runs the emulator's module in node, listening on loopback only (the
// kinesalite command listens on every interface).
func start(t testing.TB, name, options string) string {
	t.Helper()
	mod := filepath.Join(modules(), name)
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(mod); serr != nil || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI=true (node, and npm ci in test/emulators: scripts/test does it)", name)
		}
		t.Skipf("no %s (run npm ci --ignore-scripts in test/emulators; CI=true makes this a failure)", name)
	}
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("require(%q)(%s).listen(%d, '127.0.0.1')", mod, options, port)
	cmd := exec.Command(node, "-e", script)
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return fmt.Sprintf("http://%s", addr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s: %v", name, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
