package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graftdb/graft/bench"
	"github.com/graftdb/graft/internal/model"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildGraft builds the binary once per test run (in a directory under the
// system's temporary directory, removed by the OS).
func buildGraft(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "graft-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "graft")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	errs *bytes.Buffer
}

// startRun starts "graft run" (with extra flags) and waits until it serves.
func startRun(t *testing.T, bin, dir string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run", "--data-dir", dir, "--listen", "127.0.0.1:0"}, extra...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, errs: &bytes.Buffer{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.errs.WriteString(line + "\n")
			if rest, ok := strings.CutPrefix(line, "graft: serving http://"); ok {
				found <- strings.Fields(rest)[0]
			}
		}
	}()
	select {
	case p.addr = <-found:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("graft run did not start:\n%s", p.errs)
	}
	return p
}

// Post writes while killing graft run with SIGKILL at random moments and
// restarting it; once everything is committed, the exported graph equals an
// independent model. SIGTERM then drains and exits 0.
func TestCrashSafety(t *testing.T) {
	bin := buildGraft(t)
	dir := t.TempDir()

	cfg := bench.FleetConfig{Orgs: 20, DevicesPerOrg: 5, SoftwarePerOrg: 30, SoftwarePerDevice: 6, Skew: 1.2, Burst: 4, Seed: 7}
	gen := bench.NewFleet(cfg)
	want := model.New()
	var chunks []string
	var chunk strings.Builder
	for i := 1; i <= 3000; i++ {
		w := gen.Next()
		if err := want.ApplyWrite(w); err != nil {
			t.Fatal(err)
		}
		chunk.Write(w.AppendJSON(nil))
		chunk.WriteByte('\n')
		if i%25 == 0 {
			chunks = append(chunks, chunk.String())
			chunk.Reset()
		}
	}

	rng := rand.New(rand.NewPCG(1, 2))
	p := startRun(t, bin, dir)
	kills := 0
	client := &http.Client{Timeout: 10 * time.Second}
	// SIGKILL from another goroutine every 5 to 25 requests: mid-request,
	// mid-batch, mid-commit, wherever it lands.
	killNext := 5 + rng.IntN(20)
	for i, sent := 0, 0; i < len(chunks); sent++ {
		if sent == killNext {
			go func(c *exec.Cmd) {
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				c.Process.Signal(syscall.SIGKILL)
			}(p.cmd)
		}
		if sent > killNext {
			p.cmd.Wait()
			kills++
			p = startRun(t, bin, dir)
			killNext = sent + 5 + rng.IntN(20)
		}
		resp, err := client.Post("http://"+p.addr+"/v1/writes", "application/x-ndjson", strings.NewReader(chunks[i]))
		if err != nil {
			continue // killed mid-request: post the same chunk again (replay is idempotent)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("chunk %d: HTTP %d", i, resp.StatusCode)
		}
		i++
	}
	// A last kill while the engine is still catching up.
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p = startRun(t, bin, dir)

	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := client.Get("http://" + p.addr + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		var st struct{ Pending, DeadLettered int64 }
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.DeadLettered != 0 {
			t.Fatalf("%d dead letters", st.DeadLettered)
		}
		if st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d pending", st.Pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, p.errs)
	}

	out, err := exec.Command(bin, "export", "--data-dir", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if d := diffExport(t, string(out), want); d != "" {
		t.Fatalf("after %d kills the graph differs from the model:\n%s", kills+1, d)
	}
	if _, err := os.Stat(filepath.Join(dir, "deadletters.ndjson")); err == nil {
		if b, _ := os.ReadFile(filepath.Join(dir, "deadletters.ndjson")); len(b) > 0 {
			t.Fatalf("dead letters:\n%s", b)
		}
	}
	wv, we := want.Snapshot()
	t.Logf("%d writes in %d requests, %d SIGKILLs; graph of %d vertices and %d edges equals the model", 3000, len(chunks), kills+1, len(wv), len(we))
	_ = fmt.Sprint
}
