// Package javaserver starts a Java server the tests need (Apache TinkerPop
// Gremlin Server, JanusGraph, Apache Kafka) from the jars of a pinned Maven project under test/:
// java -cp '<jars>/*' MAIN ARGS, on free loopback ports, in a throwaway
// directory; it waits until the server answers and kills it after.
//
// The jars are fetched once per machine into a cache folder named after the
// project and a hash of its pom.xml ($GRAFT_TEST_CACHE, default
// ~/.cache/graft-test): scripts/test fetches them before the suite runs, and
// Start fetches them itself when they are missing (mvn on the PATH). Without
// java (or jars it cannot fetch) a test skips — except under CI=true, where
// it fails.
package javaserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Spec says how to start one kind of server.
type Spec struct {
	// Project is the Maven project under test/ that lists the jars
	// (test/<Project>/pom.xml).
	Project string
	Main    string
	// Setup writes the server's configuration into dir (fresh, empty) and
	// returns the program arguments. classpath holds the project's jars,
	// for a tool the server needs run first (Kafka formats its storage).
	Setup func(dir, classpath string) (args []string, err error)
	JVM   []string // JVM options (heap, GC)
	// Ready returns nil once the server serves; it is polled.
	Ready        func(ctx context.Context) error
	StartTimeout time.Duration // default 2 minutes
}

// Server is a running server.
type Server struct {
	Dir    string // its throwaway directory (configuration, data, server.log)
	cmd    *exec.Cmd
	log    *os.File
	mu     sync.Mutex
	spec   Spec
	argv   []string   // java and its arguments, for Restart
	exited chan error // the process's Wait, once it returns (one Wait per process)
	killed bool       // by Kill: Revive may start it again
}

// Start starts the server and waits until it is ready. It is meant for a
// package's TestMain-lifetime server: t is only used to fail or skip, and
// nothing is registered as a cleanup — call Stop.
func Start(t testing.TB, spec Spec) *Server {
	t.Helper()
	s, err := start(spec)
	if err != nil {
		if errors.Is(err, errUnavailable) && os.Getenv("CI") != "true" {
			t.Skipf("%v (CI=true makes this a failure)", err)
		}
		t.Fatal(err)
	}
	return s
}

// StartAll starts the servers at once and waits until every one is ready
// (nodes of one cluster, none of which is ready alone); if one fails, the
// others are stopped.
func StartAll(t testing.TB, specs []Spec) []*Server {
	t.Helper()
	servers := make([]*Server, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = start(spec)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
		if errors.Is(err, errUnavailable) && os.Getenv("CI") != "true" {
			t.Skipf("%v (CI=true makes this a failure)", err)
		}
		t.Fatal(err)
	}
	return servers
}

var errUnavailable = errors.New("unavailable")

func start(spec Spec) (*Server, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("%s: java is not on the PATH (apt-get install openjdk-17-jre-headless): %w", spec.Project, errUnavailable)
	}
	jars, err := Jars(spec.Project)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "graft-"+spec.Project+"-")
	if err != nil {
		return nil, err
	}
	args, err := spec.Setup(dir, filepath.Join(jars, "*"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: configuration: %w", spec.Project, err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmdArgs := append(append(append([]string{}, spec.JVM...), "-cp", filepath.Join(jars, "*"), spec.Main), args...)
	s := &Server{Dir: dir, log: logf, spec: spec, argv: append([]string{java}, cmdArgs...)}
	if err := s.run(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Restart kills the server (as a crash would: no shutdown) and starts it
// again on the same directory, data and ports; it waits until it is ready.
func (s *Server) Restart() error {
	if err := s.Kill(); err != nil {
		return err
	}
	return s.Revive()
}

// Kill kills the server as a crash would (SIGKILL, no shutdown) and keeps
// its directory, for Revive.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return errors.New("javaserver: kill of a server not running")
	}
	s.cmd.Process.Kill() //nolint:errcheck // already gone is fine
	<-s.exited
	s.killed = true
	return nil
}

// Revive starts a killed server again on the same directory, data and
// ports, and waits until it is ready.
func (s *Server) Revive() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.killed {
		return errors.New("javaserver: revive of a server not killed")
	}
	s.killed = false
	return s.run()
}

// run starts the server's process and waits until it is ready; s.mu held
// or s not shared yet.
func (s *Server) run() error {
	spec := s.spec
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.Dir, s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", spec.Project, err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	s.exited = exited
	go func() { exited <- cmd.Wait() }()
	timeout := spec.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := spec.Ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			s.cmd = nil
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", spec.Project, werr, s.tail())
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out := s.tail()
			cmd.Process.Kill() //nolint:errcheck // already gone is fine
			s.cmd = nil
			return fmt.Errorf("%s was not ready within %v (last: %v):\n%s", spec.Project, timeout, err, out)
		}
	}
}

// tail is the end of the server's log, for error messages.
func (s *Server) tail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if !s.killed {
		s.cmd.Process.Kill() //nolint:errcheck // already gone is fine
	}
	s.cmd = nil
	s.log.Close()
	time.Sleep(100 * time.Millisecond) // let the JVM release its files
	os.RemoveAll(s.Dir)
}

// Jars returns the folder holding the jars of test/<project>/pom.xml,
// fetching them with Maven when they are not there yet.
func Jars(project string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	pom := filepath.Join(root, "test", project, "pom.xml")
	dir, err := CacheDir(pom)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("%s: no jars in %s and no mvn to fetch them (scripts/test fetches them): %w", project, dir, errUnavailable)
	}
	// Fetch into a fresh folder, then rename: two test binaries fetching at
	// once never see half a folder.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".part-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command(mvn, "-q", "-B", "-f", pom, "dependency:copy-dependencies", "-DoutputDirectory="+tmp).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: mvn dependency:copy-dependencies: %v\n%s", project, err, bytes.TrimSpace(out))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ".complete")); serr == nil {
			return dir, nil // another binary was faster
		}
		return "", err
	}
	return dir, nil
}

// CacheDir is where the jars of a pom.xml go: $GRAFT_TEST_CACHE (default
// ~/.cache/graft-test)/<project>-<12 hex digits of the pom's SHA-256>.
// scripts/test names it the same way.
func CacheDir(pom string) (string, error) {
	b, err := os.ReadFile(pom)
	if err != nil {
		return "", err
	}
	base := os.Getenv("GRAFT_TEST_CACHE")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".cache", "graft-test")
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return filepath.Join(base, filepath.Base(filepath.Dir(pom))+"-"+hex.EncodeToString(sum[:])[:12]), nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/graftdb/graft\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("javaserver: not inside the graft repository")
		}
		dir = parent
	}
}
