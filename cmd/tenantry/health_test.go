package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// requests records the paths a server was asked for.
type requests struct {
	mu    sync.Mutex
	paths []string
}

func (r *requests) add(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
}

func (r *requests) since(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.paths[n:])
}

func (r *requests) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.paths)
}

// healthServer answers /health with 200 and /ready with status.
func healthServer(t *testing.T, ready int) (addr string, seen *requests) {
	t.Helper()
	seen = &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.URL.Path)
		switch r.URL.Path {
		case "/health":
			w.WriteHeader(http.StatusOK)
		case "/ready":
			w.WriteHeader(ready)
			_, _ = w.Write([]byte(`{"status":"unavailable","failed":"database"}` + "\n"))
		default:
			http.Redirect(w, r, "/health", http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), seen
}

func runHealth(t *testing.T, environ map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), append([]string{"health"}, args...), environ, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// Ensure the probe succeeds on a 2xx answer only, and says what it got
// otherwise.
func TestHealthProbe(t *testing.T) {
	t.Parallel()
	addr, _ := healthServer(t, http.StatusServiceUnavailable)
	env := map[string]string{}

	if code, out, errs := runHealth(t, env, "--url", "http://"+addr+"/health"); code != 0 || !strings.Contains(out, "200 OK") {
		t.Errorf("healthy: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, _, errs := runHealth(t, env, "--url", "http://"+addr+"/ready")
	if code == 0 || !strings.Contains(errs, "503") || !strings.Contains(errs, "database") {
		t.Errorf("unready: exit %d, stderr %q", code, errs)
	}
	// A redirect is not followed: the probe asked one address.
	if code, _, errs := runHealth(t, env, "--url", "http://"+addr+"/elsewhere"); code == 0 || !strings.Contains(errs, "302") {
		t.Errorf("redirected: exit %d, stderr %q", code, errs)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if code, _, errs := runHealth(t, env, "--url", "http://"+closed+"/health", "--timeout", "2s"); code == 0 || !strings.Contains(errs, closed) {
		t.Errorf("nothing listening: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runHealth(t, env, "--url", "::not a url"); code == 0 || errs == "" {
		t.Errorf("bad url: exit %d, stderr %q", code, errs)
	}
}

// Ensure that without --url the probe finds the process its environment
// configures: the private listener, or the API when metrics are off, on
// loopback when the listener is bound to every address.
func TestHealthProbeFindsConfiguredProcess(t *testing.T) {
	t.Parallel()
	addr, paths := healthServer(t, http.StatusOK)
	_, port, _ := net.SplitHostPort(addr)

	for _, tc := range []struct {
		name    string
		environ map[string]string
		args    []string
		path    string
	}{
		{"metrics listener", map[string]string{"TENANTRY_METRICS_ADDR": addr}, nil, "/health"},
		{"metrics listener on every address", map[string]string{"TENANTRY_METRICS_ADDR": "0.0.0.0:" + port}, nil, "/health"},
		{"readiness", map[string]string{"TENANTRY_METRICS_ADDR": addr}, []string{"--ready"}, "/ready"},
		{"API with metrics off", map[string]string{"TENANTRY_METRICS_ADDR": "off", "TENANTRY_ADDR": ":" + port}, nil, "/health"},
	} {
		before := paths.len()
		code, out, errs := runHealth(t, tc.environ, tc.args...)
		if got := paths.since(before); code != 0 || !slices.Equal(got, []string{tc.path}) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q, requests %v", tc.name, code, out, errs, got)
		}
	}
	if code, _, errs := runHealth(t, map[string]string{"TENANTRY_METRICS_ADDR": "nowhere"}); code == 0 || !strings.Contains(errs, "TENANTRY_METRICS_ADDR") {
		t.Errorf("bad address: exit %d, stderr %q", code, errs)
	}
}
