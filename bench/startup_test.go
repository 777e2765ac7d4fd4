package bench_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// BenchmarkStartupToFirstHealthy measures how long `tenantry serve` takes,
// from exec to its first 200 on GET /health, on a fresh data directory (and,
// in the production shape, a fresh control database), so that the figure
// includes creating the storage and running every control migration. It is
// what an orchestrator waits for before routing traffic to a new process.
func BenchmarkStartupToFirstHealthy(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		base := b.TempDir()
		// Keep-alives are off so that no poll reuses a connection to a
		// server that has already been stopped.
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		durations := make([]time.Duration, 0, b.N)
		b.StopTimer()
		for i := range b.N {
			durations = append(durations, startOnce(b, bin, shape, client, filepath.Join(base, strconv.Itoa(i))))
		}
		reportLatencies(b, durations)
	})
}

// buildTenantry compiles the command once, so that every iteration measures
// the binary's start rather than the compiler.
func buildTenantry(b *testing.B) string {
	b.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("the go command is needed to build tenantry: %v", err)
	}
	bin := filepath.Join(b.TempDir(), "tenantry")
	out, err := exec.Command(goTool, "build", "-o", bin, "github.com/tenantry/tenantry/cmd/tenantry").CombinedOutput()
	if err != nil {
		b.Fatalf("go build ./cmd/tenantry: %v\n%s", err, out)
	}
	return bin
}

// portAttempts bounds the retries when another process takes the free port
// between its discovery and the child's bind.
const portAttempts = 3

var errPortTaken = errors.New("listen address already in use")

// startOnce starts and stops one child and returns its time to healthy. An
// attempt lost to a port race is discarded and retried from scratch, with
// storage of its own, since the lost attempt has already created its own.
func startOnce(b *testing.B, bin string, shape config.Shape, client *http.Client, dir string) time.Duration {
	b.Helper()
	for attempt := 1; ; attempt++ {
		env := childEnviron(b, shape, filepath.Join(dir, strconv.Itoa(attempt)))
		d, err := timeToHealthy(b, bin, env, client)
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
}

// childEnviron is the child's whole environment: nothing is inherited, so
// that a DATABASE_URL or TENANTRY_* variable in the benchmark's own
// environment cannot change what is measured. The data directory does not
// exist yet; the child creates it.
func childEnviron(b *testing.B, shape config.Shape, dataDir string) []string {
	b.Helper()
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o700); err != nil {
		b.Fatal(err)
	}
	env := []string{
		"TENANTRY_DATA_DIR=" + dataDir,
		"TENANTRY_ADDR=127.0.0.1:" + freePort(b),
		"TENANTRY_SHUTDOWN_TIMEOUT=5s",
		// A child of an earlier benchmark may still hold the default.
		"TENANTRY_METRICS_ADDR=127.0.0.1:0",
	}
	if shape == config.Production {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		env = append(env,
			"DATABASE_URL="+apptest.NewPostgresDatabase(b),
			"JWT_SECRET_KEY="+hex.EncodeToString(key),
		)
	}
	return env
}

// freePort returns a loopback port that was free a moment ago. Another
// process may take it before the child binds; startOnce retries then.
func freePort(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// healthTimeout is how long a child may take to answer before the benchmark
// gives up on it; a normal start takes a small fraction of it.
const healthTimeout = 30 * time.Second

// timeToHealthy execs the child, polls GET /health every millisecond until it
// answers 200, then stops the child with SIGTERM. Only the time from exec to
// that answer runs the benchmark timer.
func timeToHealthy(b *testing.B, bin string, env []string, client *http.Client) (time.Duration, error) {
	b.Helper()
	var addr string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "TENANTRY_ADDR="); ok {
			addr = v
		}
	}
	url := "http://" + addr + "/health"

	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	// Read only after Wait has returned, when exec has finished copying.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	exited := make(chan error, 1)
	stopped := false
	defer func() {
		// A failed iteration must not leave the child running.
		if !stopped && cmd.Process != nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	ticker := time.NewTicker(time.Millisecond)
	defer ticker.Stop()
	b.StartTimer()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.StopTimer()
		return 0, fmt.Errorf("start tenantry: %w", err)
	}
	go func() { exited <- cmd.Wait() }()
	var elapsed time.Duration
	for {
		if healthy(client, url) {
			elapsed = time.Since(start)
			b.StopTimer()
			break
		}
		select {
		case err := <-exited:
			b.StopTimer()
			stopped = true
			if strings.Contains(stderr.String(), "address already in use") {
				return 0, errPortTaken
			}
			return 0, fmt.Errorf("tenantry exited before answering /health (%v); its log:\n%s", err, stderr.String())
		case <-ticker.C:
		}
		if time.Since(start) > healthTimeout {
			b.StopTimer()
			return 0, fmt.Errorf("tenantry did not answer %s within %s", url, healthTimeout)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("stop tenantry: %w", err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			return 0, fmt.Errorf("tenantry did not exit cleanly on SIGTERM (%v); its log:\n%s", err, stderr.String())
		}
	case <-time.After(healthTimeout):
		return 0, fmt.Errorf("tenantry still running %s after SIGTERM", healthTimeout)
	}
	return elapsed, nil
}

// healthy reports whether url answers 200. Before the child listens the
// connection is refused at once, which is what keeps the poll cheap.
func healthy(client *http.Client, url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
