package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
)

var (
	binaryOnce sync.Once //nolint:gochecknoglobals // one build per test binary
	binaryPath string    //nolint:gochecknoglobals
	binaryErr  error     //nolint:gochecknoglobals
)

// tenantryBinary builds the command once for the tests that need real
// processes (signals, several servers).
func tenantryBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tenantry-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "tenantry")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	addr string
	done chan error
}

// startProcess runs tenantry with args and env, and waits until its log
// says it is ready.
func startProcess(t *testing.T, env map[string]string, ready string, args ...string) *process {
	t.Helper()
	p := launchProcess(t, env, args...)
	p.awaitLog(t, ready)
	return p
}

// launchProcess runs tenantry with args and env without waiting for it; the
// process is killed when the test ends.
func launchProcess(t *testing.T, env map[string]string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(tenantryBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.logs
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// awaitLog waits until the process logs ready, and fails the test at once
// if it exits first.
func (p *process) awaitLog(t *testing.T, ready string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.logs.String(), ready) {
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup
			t.Fatalf("tenantry %s exited (%v) before it was ready:\n%s", p.cmd.Args[1], err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tenantry %s did not start:\n%s", p.cmd.Args[1], p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startServe runs `tenantry serve` with env and waits until it listens.
func startServe(t *testing.T, env map[string]string) *process {
	t.Helper()
	env = maps.Clone(env)
	env["TENANTRY_ADDR"] = "127.0.0.1:0"
	p := startProcess(t, env, "tenantry listening", "serve")
	p.addr, _ = listeningAddr(t, p.logs)
	return p
}

// startWorker runs `tenantry worker` with env and waits until it works.
func startWorker(t *testing.T, env map[string]string) *process {
	t.Helper()
	return startProcess(t, env, "tenantry worker running", "worker")
}

func (p *process) url(path string) string { return "http://" + p.addr + path }

func (p *process) do(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url(path), r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestLogoutThroughOneProcessIsSeenByAnother(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	if env["REDIS_URL"] == "" {
		t.Log("no TENANTRY_TEST_REDIS_URL: the processes share PostgreSQL only")
	}
	a := startServe(t, env)
	b := startServe(t, env)

	register := map[string]string{"first_name": "Two", "last_name": "Processes", "email": "two.processes@example.com", "password": apptest.Password}
	if status, body := a.do(t, "POST", "/api/auth/register", "", register); status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	status, body := b.do(t, "POST", "/api/auth/login", "", map[string]string{"email": register["email"], "password": apptest.Password})
	if status != 200 {
		t.Fatalf("login: %d %v", status, body)
	}
	data := body["data"].(map[string]any)
	access, refresh := data["access_token"].(string), data["refresh_token"].(string)
	if status, _ := a.do(t, "GET", "/api/users/me", access, nil); status != 200 {
		t.Fatalf("the token issued by one process is refused by the other: %d", status)
	}

	if status, _ := a.do(t, "POST", "/api/auth/logout", access, nil); status != 200 {
		t.Fatalf("logout: %d", status)
	}
	loggedOut := time.Now()
	for {
		status, body := b.do(t, "GET", "/api/users/me", access, nil)
		if status == 401 {
			if code := body["error"].(map[string]any)["code"]; code != "TOKEN_REVOKED" {
				t.Fatalf("refused with %v", code)
			}
			break
		}
		if time.Since(loggedOut) > time.Second {
			t.Fatal("the other process still accepts the token a second after logout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("refused by the other process %v after logout", time.Since(loggedOut).Round(time.Microsecond))
	if status, _ := b.do(t, "POST", "/api/auth/refresh", "", map[string]string{"refresh_token": refresh}); status != 401 {
		t.Fatalf("the refresh token still works in the other process: %d", status)
	}
}

// A SIGTERM while a request body is still arriving lets that request finish
// before the process exits cleanly.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	p := startServe(t, map[string]string{
		"TENANTRY_DATA_DIR":                 t.TempDir(),
		"TENANTRY_PASSWORD_HASH_MEMORY_KIB": "64",
		"TENANTRY_PASSWORD_HASH_ITERATIONS": "1",
	})
	body := `{"first_name":"Late","last_name":"Arrival","email":"late@example.com","password":"` + apptest.Password + `"}`
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", p.url("/api/auth/register"), pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	type result struct {
		status int
		err    error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		res.Body.Close()
		got <- result{status: res.StatusCode}
	}()
	half := len(body) / 2
	if _, err := io.WriteString(pw, body[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server is now reading the body
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := io.WriteString(pw, body[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	r := <-got
	if r.err != nil || r.status != 201 {
		t.Fatalf("in-flight request: status %d, %v; want 201", r.status, r.err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, p.logs.String())
		}
		p.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if !strings.Contains(p.logs.String(), "draining in-flight requests") {
		t.Errorf("no shutdown log line:\n%s", p.logs.String())
	}
}

func TestUsersCommands(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.Environ(t, shape)

		code, out := runCLIWithInput(t, env, apptest.Password+"\n", "users", "create-admin", "--email", "Root@Example.com")
		if code != 0 || !strings.Contains(out, "created platform administrator root@example.com") {
			t.Fatalf("create-admin (%d):\n%s", code, out)
		}
		if strings.Contains(out, apptest.Password) {
			t.Fatal("the password was printed")
		}
		if code, out := runCLIWithInput(t, env, "", "users", "create-admin", "--email", "nopass@example.com"); code == 0 || !strings.Contains(out, "no password given") {
			t.Fatalf("create-admin without a password (%d):\n%s", code, out)
		}
		if code, out := runCLIWithInput(t, env, "weak\n", "users", "create-admin", "--email", "weak@example.com"); code == 0 || !strings.Contains(out, "Password must be at least 8 characters") {
			t.Fatalf("create-admin with a weak password (%d):\n%s", code, out)
		}

		cfg, err := config.Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		e := apptest.Start(t, cfg)
		root := e.Login(t, &apptest.User{Email: "root@example.com"})
		var me struct {
			ID string `json:"id"`
		}
		e.Get(t, "/api/users/me", root.AccessToken).Expect(t, 200, "").Data(t, &me)
		root.ID = me.ID
		member := e.SignUp(t, "Member")
		isAdmin := func(email string) bool {
			var admin bool
			if err := e.App.Engines.Control.QueryRow(context.Background(), "SELECT is_platform_admin FROM users WHERE email = $1", email).Scan(&admin); err != nil {
				t.Fatal(err)
			}
			return admin
		}
		if !isAdmin(root.Email) || isAdmin(member.Email) {
			t.Fatal("platform administrator flags are wrong")
		}

		// Promoting an existing account needs no password and keeps its own.
		if code, out := runCLIWithInput(t, env, "", "users", "create-admin", "--email", member.Email); code != 0 || !strings.Contains(out, "is now a platform administrator") {
			t.Fatalf("promote (%d):\n%s", code, out)
		}
		if !isAdmin(member.Email) {
			t.Fatal("the existing account was not promoted")
		}
		e.Login(t, member)

		if code, out := runCLI(t, env, "users", "deactivate", "--email", member.Email); code != 0 || !strings.Contains(out, "deactivated") {
			t.Fatalf("deactivate (%d):\n%s", code, out)
		}
		e.Get(t, "/api/users/me", member.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		e.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/login", Body: map[string]string{"email": member.Email, "password": apptest.Password}}).Expect(t, 403, "ACCOUNT_INACTIVE")
		if code, out := runCLI(t, env, "users", "activate", "--email", member.Email); code != 0 || !strings.Contains(out, "activated") {
			t.Fatalf("activate (%d):\n%s", code, out)
		}
		e.Login(t, member)
		if code, _ := runCLI(t, env, "users", "deactivate", "--email", "nobody@example.com"); code == 0 {
			t.Fatal("deactivating an unknown account succeeded")
		}

		// Each action from the command line is in the platform's audit
		// trail, which stays intact.
		entries, _, err := e.App.Audit.List(context.Background(), audit.PlatformChain, audit.Filter{Page: 1, PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, en := range entries {
			if strings.HasPrefix(en.UserAgent, "tenantry ") {
				actions = append(actions, en.Action+":"+en.TargetID)
			}
		}
		slices.Reverse(actions)
		want := []string{"user.create_platform_admin:" + root.ID, "user.promote_platform_admin:" + member.ID,
			"user.deactivate:" + member.ID, "user.activate:" + member.ID}
		if !slices.Equal(actions, want) {
			t.Fatalf("command-line actions in the audit trail: %v, want %v", actions, want)
		}
		if code, out := runCLI(t, env, "audit", "verify"); code != 0 || !strings.Contains(out, "platform: intact") {
			t.Fatalf("audit verify (%d):\n%s", code, out)
		}
	})
}

// Two workers and two serve processes on one PostgreSQL run each periodic
// job once per period: without the leader's single schedule and uniqueness
// per period, every worker would enqueue its own.
func TestPeriodicJobsRunOncePerPeriodAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	const period = 2 * time.Second
	env["TENANTRY_MAINTENANCE_INTERVAL"] = period.String()
	env["TENANTRY_RELAY_SWEEP_INTERVAL"] = period.String()
	startServe(t, env)
	startServe(t, env)
	// Only workers enqueue and work jobs, so the clock starts with them.
	started := time.Now()
	workers := []*process{startWorker(t, env), startWorker(t, env)}
	time.Sleep(4*period + period/2)
	for _, w := range workers {
		if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-w.done; err != nil {
			t.Fatalf("worker exited with %v:\n%s", err, w.logs.String())
		}
		w.done <- nil
	}
	elapsed := time.Since(started)

	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	engines, err := app.OpenEngines(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer engines.Close()
	maxPerKind := int(elapsed/period) + 2
	for _, kind := range []string{"reconcile_storage", "cleanup_sessions", "reap_tenants", "purge_tenants", "prune_outbox", "sweep_outbox"} {
		var total, done int
		if err := engines.Control.QueryRow(context.Background(),
			`SELECT count(*), count(*) FILTER (WHERE state = 'completed' AND attempt = 1) FROM river_job WHERE kind = $1`, kind).
			Scan(&total, &done); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d jobs in %v, %d completed on their first attempt", kind, total, elapsed.Round(time.Millisecond), done)
		if total < 2 || total > maxPerKind {
			t.Errorf("%s ran %d times in %v with a period of %v and four processes; want between 2 and %d", kind, total, elapsed, period, maxPerKind)
		}
		if done < total-1 {
			t.Errorf("%s: only %d of %d jobs completed once", kind, done, total)
		}
	}
}
