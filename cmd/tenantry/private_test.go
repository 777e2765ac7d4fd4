package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// privateAddr returns the address a process logged its private listener at.
func privateAddr(t *testing.T, p *process) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "metrics listening" {
				return line["addr"].(string)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the process never logged its metrics listener:\n%s", p.logs.String())
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// Ensure serve and worker both answer /health, /ready and /metrics on their
// private listener, and serve keeps metrics off its public one.
func TestProcessesServeMetricsPrivately(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	serve := startServe(t, env)
	worker := startWorker(t, env)
	for _, p := range []*process{serve, worker} {
		addr := privateAddr(t, p)
		if addr == serve.addr {
			t.Fatal("metrics share the public listener")
		}
		for _, path := range []string{"/health", "/ready", "/metrics"} {
			if status, body := get(t, "http://"+addr+path); status != http.StatusOK {
				t.Fatalf("%s %s: %d\n%s", p.cmd.Args[1], path, status, body)
			}
		}
		if _, body := get(t, "http://"+addr+"/metrics"); !strings.Contains(body, "tenantry_jobs") && !strings.Contains(body, "tenantry_outbox_pending_streams") {
			t.Fatalf("%s /metrics lacks tenantry's metrics:\n%s", p.cmd.Args[1], body)
		}
	}
	if status, _ := get(t, serve.url("/metrics")); status != http.StatusNotFound {
		t.Fatalf("the public listener answered /metrics with %d", status)
	}
}
