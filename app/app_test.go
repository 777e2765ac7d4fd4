package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

func TestHealthAndReadiness(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)

		var health struct {
			Status string `json:"status"`
		}
		env.Get(t, "/health", "").Expect(t, 200, "").Data(t, &health)
		if health.Status != "healthy" {
			t.Fatalf("health = %+v", health)
		}

		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		env.Get(t, "/ready", "").Expect(t, 200, "").Data(t, &ready)
		if ready.Status != "ready" || ready.Checks["control_database"] != "ok" {
			t.Fatalf("ready = %+v", ready)
		}

		// With the control database gone, readiness fails and says which
		// dependency, while liveness still answers. Closing the app stops
		// the job queue before it closes the database, which the queue
		// would otherwise keep trying to reach.
		if err := env.App.Close(); err != nil {
			t.Fatal(err)
		}
		res := env.Get(t, "/ready", "").Expect(t, 503, "SERVICE_UNAVAILABLE")
		var body struct {
			Error struct {
				Details map[string]string `json:"details"`
			} `json:"error"`
		}
		res.Decode(t, &body)
		if body.Error.Details["control_database"] != "unavailable" {
			t.Fatalf("503 does not name the failed dependency: %s", res.Body)
		}
		env.Get(t, "/health", "").Expect(t, 200, "")
	})
}

func TestServeDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln, h, 5*time.Second, slog.New(slog.DiscardHandler)) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{string(b), err}
	}()
	<-started
	stop() // what SIGTERM does to serve's context

	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request = %q, %v; want it to finish", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Fatal("the server still accepts connections after shutdown")
	}
}

func TestEmbeddedSecretIsGeneratedOnceAndPrivate(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t, config.Embedded)
	apptest.Start(t, cfg)
	path := filepath.Join(cfg.DataDir, "secrets", "jwt_secret")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode = %v, want 0600", info.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	apptest.Start(t, cfg)
	second, _ := os.ReadFile(path)
	if len(strings.TrimSpace(string(first))) < 64 || string(first) != string(second) {
		t.Fatal("the secret was not kept across restarts")
	}
}

func TestProductionRefusesAWeakOrMissingSecret(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "too-short"} {
		cfg, err := config.Parse(map[string]string{"DATABASE_URL": "postgres://nowhere/db", "JWT_SECRET_KEY": key})
		if err != nil {
			t.Fatal(err)
		}
		_, err = app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test")
		if err == nil || !strings.Contains(err.Error(), "JWT_SECRET_KEY") {
			t.Errorf("key %q: New = %v, want a JWT_SECRET_KEY error", key, err)
		}
	}
}
