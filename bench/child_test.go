package bench_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// child is a server process that a benchmark drives over HTTP, `tenantry
// serve` or a peer it is compared with, so that what is measured is the
// binary users run, with its own runtime and its own two cores to compete
// for, rather than a server sharing the benchmark's heap and scheduler.
type child struct {
	url     string
	pid     int
	dataDir string
	// databaseURL is the control database in the production shape.
	databaseURL string
	logPath     string
	client      *http.Client
	// env is the environment a tenantry child was started with, and stop
	// ends the process (once; the benchmark's cleanup calls it too).
	env  []string
	stop func()
}

// startChild starts `tenantry serve` on a fresh data directory (and, in the
// production shape, a fresh control database) with extra appended to the
// environment childEnviron builds, waits for its first healthy answer and
// stops it with SIGTERM when the benchmark ends. Nothing else is inherited:
// blobs stay on local disk in both shapes, and unless extra says otherwise
// the child runs with every default a user gets, argon2id parameters
// included. Its log goes to a file, as a server's log goes to a file or a
// journal in production, rather than through a pipe the benchmark would
// spend its own CPU draining.
func startChild(b *testing.B, bin string, shape config.Shape, extra ...string) *child {
	b.Helper()
	base := b.TempDir()
	for attempt := 1; ; attempt++ {
		dir := filepath.Join(base, strconv.Itoa(attempt))
		env := append(childEnviron(b, shape, filepath.Join(dir, "data")), extra...)
		c, err := launch(b, bin, env, filepath.Join(dir, "tenantry.log"))
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
}

// restartChild starts `tenantry` command (serve or worker) on the data
// directory (and control database) of c, which must have been stopped, on a
// new port, as a deployment or a reboot would.
func restartChild(b *testing.B, bin, command string, c *child) *child {
	b.Helper()
	for attempt := 1; ; attempt++ {
		env := slices.DeleteFunc(slices.Clone(c.env), func(kv string) bool { return strings.HasPrefix(kv, "TENANTRY_ADDR=") })
		env = append(env, "TENANTRY_ADDR=127.0.0.1:"+freePort(b))
		restarted, err := launchCommand(b, bin, command, env, strings.TrimSuffix(c.logPath, ".log")+".restarted.log")
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return restarted
	}
}

// launch execs `tenantry serve` and waits until it answers GET /health.
func launch(b *testing.B, bin string, env []string, logPath string) (*child, error) {
	b.Helper()
	return launchCommand(b, bin, "serve", env, logPath)
}

// workerReady is what `tenantry worker` logs once it works.
const workerReady = `"msg":"tenantry worker running"`

// launchCommand execs `tenantry serve`, or `tenantry worker`, which answers
// no HTTP, and waits until it is ready: serve's first healthy answer, the
// worker's log line saying it runs.
func launchCommand(b *testing.B, bin, command string, env []string, logPath string) (*child, error) {
	b.Helper()
	c := &child{logPath: logPath, env: env}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "TENANTRY_ADDR":
			c.url = "http://" + v
		case "TENANTRY_DATA_DIR":
			c.dataDir = v
		case "DATABASE_URL":
			c.databaseURL = v
		}
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, command)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start tenantry: %w", err)
	}
	c.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c.stop = sync.OnceFunc(func() { stopChild(b, cmd, exited, c) })
	b.Cleanup(c.stop)

	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	ready := func() bool { return healthy(probe, c.url+"/health") }
	if command == "worker" {
		ready = func() bool { return strings.Contains(c.log(), workerReady) }
	}
	start := time.Now()
	for !ready() {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			if strings.Contains(c.log(), "address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("tenantry %s exited before it was ready (%v); its log:\n%s", command, err, c.log())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(start) > healthTimeout {
			return nil, fmt.Errorf("tenantry %s was not ready within %s; its log:\n%s", command, healthTimeout, c.log())
		}
	}
	c.client = &http.Client{Timeout: time.Minute}
	return c, nil
}

// stopChild ends the child with SIGTERM, as an orchestrator would, and kills
// it if it is still there after its shutdown timeout has long passed.
func stopChild(b *testing.B, cmd *exec.Cmd, exited chan error, c *child) {
	if c.client != nil {
		c.client.CloseIdleConnections()
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil && !strings.Contains(err.Error(), "signal: terminated") {
			b.Logf("tenantry exited with %v; the end of its log:\n%s", err, tail(c.log(), 4000))
		}
	case <-time.After(healthTimeout):
		_ = cmd.Process.Kill()
		<-exited
		b.Errorf("tenantry still running %s after SIGTERM; killed", healthTimeout)
	}
}

// log returns what the child has logged so far.
func (c *child) log() string {
	data, _ := os.ReadFile(c.logPath)
	return string(data)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// call sends one JSON request, fails the benchmark unless the answer has
// status want, and decodes the envelope's data into out when out is not nil.
func (c *child) call(b *testing.B, method, path, token string, body any, want int, out any) {
	b.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			b.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		b.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	status, data := c.do(b, req)
	if status != want {
		b.Fatalf("%s %s: status %d, want %d\n%s", method, path, status, want, data)
	}
	decodeData(b, data, out)
}

// do sends req and reads the whole answer.
func (c *child) do(b *testing.B, req *http.Request) (int, []byte) {
	b.Helper()
	res, err := c.client.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.Path, err)
	}
	return res.StatusCode, data
}

// decodeData decodes the data member of a success envelope into out.
func decodeData(b *testing.B, body []byte, out any) {
	b.Helper()
	if out == nil {
		return
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		b.Fatalf("answer is not an envelope: %v\n%s", err, body)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		b.Fatalf("decode data: %v\n%s", err, body)
	}
}

// account is a registered user of a child and one session's access token.
type account struct {
	id, email, token string
}

// signUp registers an account with a unique email and logs it in.
func (c *child) signUp(b *testing.B, name string) *account {
	b.Helper()
	a := c.register(b, name)
	c.login(b, a)
	return a
}

// register creates an account with a unique email and apptest.Password.
func (c *child) register(b *testing.B, name string) *account {
	b.Helper()
	a := &account{email: strings.ToLower(name) + "." + randomHex(6) + "@example.com"}
	var data struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	c.call(b, http.MethodPost, "/api/auth/register", "", map[string]string{
		"first_name": name, "last_name": "Bench", "email": a.email, "password": apptest.Password,
	}, http.StatusCreated, &data)
	a.id = data.User.ID
	return a
}

// login opens a session for a and keeps its access token.
func (c *child) login(b *testing.B, a *account) {
	b.Helper()
	var data struct {
		AccessToken string `json:"access_token"`
	}
	c.call(b, http.MethodPost, "/api/auth/login", "", map[string]string{"email": a.email, "password": apptest.Password},
		http.StatusOK, &data)
	a.token = data.AccessToken
}

// createdTenant is what the benchmarks need of a tenant they created.
type createdTenant struct {
	ID           string `json:"id"`
	DatabaseName string `json:"database_name"`
}

// createTenant creates a tenant as a, who becomes its admin.
func (c *child) createTenant(b *testing.B, a *account, name string) createdTenant {
	b.Helper()
	var t createdTenant
	c.call(b, http.MethodPost, "/api/tenants", a.token, map[string]string{"name": name}, http.StatusCreated, &t)
	return t
}

func randomHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// idleTimeout bounds waitIdle; background work triggered by a benchmark's
// setup takes seconds.
const idleTimeout = 2 * time.Minute

// waitIdle waits until the child has used less than 5% of a core over a
// whole second, so that background work its setup set off (the first run
// of the periodic jobs, say) is not measured as if it were the requests'
// cost. It fails the benchmark if the child stays busy for idleTimeout.
func (c *child) waitIdle(b *testing.B) {
	b.Helper()
	start := time.Now()
	prev := c.cpuTime(b)
	for {
		time.Sleep(time.Second)
		cur := c.cpuTime(b)
		if cur-prev < 50*time.Millisecond {
			if waited := time.Since(start); waited > 2*time.Second {
				b.Logf("the child was busy for %s after setup", waited.Round(time.Second))
			}
			return
		}
		if time.Since(start) > idleTimeout {
			b.Fatalf("the child is still busy %s after setup (%s of CPU in the last second)", idleTimeout, cur-prev)
		}
		prev = cur
	}
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat, USER_HZ,
// which Linux fixes at 100 on every architecture Go supports.
const clockTicks = 100

// cpuTime is the CPU time the child has used so far, user and system.
func (c *child) cpuTime(b *testing.B) time.Duration {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(c.pid) + "/stat")
	if err != nil {
		b.Skipf("the child's CPU time is unavailable (it is read from /proc/<pid>/stat, Linux only): %v", err)
	}
	// The command name, in parentheses, may contain spaces; the fields
	// counted here start after it.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	// utime and stime are the 14th and 15th fields, the 12th and 13th
	// after the command name.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("cannot read CPU times from /proc/%d/stat: %q", c.pid, data)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// cores runs fn and returns how many cores the child kept busy meanwhile,
// on average: below two, on this two-core machine, the server was waiting
// (on a lock, a connection, the client) rather than short of CPU.
func (c *child) cores(b *testing.B, fn func()) float64 {
	b.Helper()
	before, start := c.cpuTime(b), time.Now()
	fn()
	return float64(c.cpuTime(b)-before) / float64(time.Since(start))
}
