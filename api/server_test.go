package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type echoInput struct {
	Page int `query:"page" minimum:"1" default:"1"`
	Body struct {
		Name     string `json:"name" minLength:"1"`
		Password string `json:"password,omitempty"`
	}
}

type echoOutput struct {
	Name string `json:"name"`
	Page int    `json:"page"`
}

// newTestServer returns a server with extra routes that exercise every
// error path of the HTTP layer.
func newTestServer(t *testing.T) (*httptest.Server, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	s := NewServer(Config{Version: "test", Logger: slog.New(slog.NewJSONHandler(logs, nil)), CORSOrigins: []string{"https://app.example"}}, Services{})
	huma.Register(s.api, huma.Operation{Method: http.MethodPost, Path: "/api/test/echo", MaxBodyBytes: 64},
		func(ctx context.Context, in *echoInput) (*response[echoOutput], error) {
			return ok("echoed", echoOutput{Name: in.Body.Name, Page: in.Page}), nil
		})
	huma.Register(s.api, huma.Operation{Method: http.MethodGet, Path: "/api/test/panic"},
		func(ctx context.Context, _ *struct{}) (*response[struct{}], error) {
			panic("secret internal detail")
		})
	huma.Register(s.api, huma.Operation{Method: http.MethodGet, Path: "/api/test/plain-error"},
		func(ctx context.Context, _ *struct{}) (*response[struct{}], error) {
			return nil, errors.New("pq: password authentication failed for user secret")
		})
	huma.Register(s.api, huma.Operation{Method: http.MethodGet, Path: "/api/test/domain-error"},
		func(ctx context.Context, _ *struct{}) (*response[struct{}], error) {
			return nil, &tenantry.Error{Code: tenantry.ERateLimited, Message: "Slow down", RetryAfter: 7}
		})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, logs
}

type errorBody struct {
	Success bool `json:"success"`
	Error   struct {
		Code    string              `json:"code"`
		Message string              `json:"message"`
		Details map[string][]string `json:"details"`
	} `json:"error"`
}

func send(t *testing.T, method, url, contentType, body string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestErrorsUseTheEnvelope(t *testing.T) {
	t.Parallel()
	srv, logs := newTestServer(t)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		status      int
		code        string
		field       string
	}{
		{"unknown route", "GET", "/api/nowhere", "", "", 404, "NOT_FOUND", ""},
		{"wrong method", "DELETE", "/health", "", "", 405, "METHOD_NOT_ALLOWED", ""},
		{"malformed JSON", "POST", "/api/test/echo", "application/json", `{"name":`, 400, "BAD_REQUEST", ""},
		{"body over the limit", "POST", "/api/test/echo", "application/json", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "PAYLOAD_TOO_LARGE", ""},
		{"unknown field", "POST", "/api/test/echo", "application/json", `{"name":"a","role":"admin"}`, 400, "VALIDATION_ERROR", "role"},
		{"field with other casing", "POST", "/api/test/echo", "application/json", `{"Name":"a"}`, 400, "VALIDATION_ERROR", "Name"},
		{"missing field", "POST", "/api/test/echo", "application/json", `{}`, 400, "VALIDATION_ERROR", "name"},
		{"wrong type", "POST", "/api/test/echo", "application/json", `{"name":5}`, 400, "VALIDATION_ERROR", "name"},
		{"null body", "POST", "/api/test/echo", "application/json", `null`, 400, "VALIDATION_ERROR", "_schema"},
		{"array body", "POST", "/api/test/echo", "application/json", `[]`, 400, "VALIDATION_ERROR", "_schema"},
		{"bad query value", "POST", "/api/test/echo?page=abc", "application/json", `{"name":"a"}`, 400, "BAD_REQUEST", "page"},
		{"query out of range", "POST", "/api/test/echo?page=0", "application/json", `{"name":"a"}`, 400, "BAD_REQUEST", "page"},
		{"unsupported media type", "POST", "/api/test/echo", "text/csv", `name,a`, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"panic", "GET", "/api/test/panic", "", "", 500, "INTERNAL_ERROR", ""},
		{"plain error", "GET", "/api/test/plain-error", "", "", 500, "INTERNAL_ERROR", ""},
		{"domain error", "GET", "/api/test/domain-error", "", "", 429, "RATE_LIMITED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := send(t, tt.method, srv.URL+tt.path, tt.contentType, tt.body, nil)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("not JSON: %s", body)
			}
			if e.Success || e.Error.Code != tt.code || e.Error.Message == "" {
				t.Fatalf("envelope = %s, want code %s", body, tt.code)
			}
			if tt.field != "" && len(e.Error.Details[tt.field]) == 0 {
				t.Errorf("details do not name %q: %s", tt.field, body)
			}
			if strings.Contains(string(body), "secret") || strings.Contains(string(body), `"name":"`) {
				t.Errorf("error response leaks internals or input: %s", body)
			}
		})
	}
	t.Run("405 lists allowed methods", func(t *testing.T) {
		res, _ := send(t, "PUT", srv.URL+"/health", "", "", nil)
		if res.Header.Get("Allow") == "" {
			t.Error("no Allow header on 405")
		}
	})
	t.Run("retry-after is sent", func(t *testing.T) {
		res, _ := send(t, "GET", srv.URL+"/api/test/domain-error", "", "", nil)
		if got := res.Header.Get("Retry-After"); got != "7" {
			t.Errorf("Retry-After = %q, want 7", got)
		}
	})
	t.Run("internals are logged", func(t *testing.T) {
		if !strings.Contains(logs.String(), "secret internal detail") {
			t.Error("the panic was not logged")
		}
	})
}

func TestSuccessEnvelope(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	res, body := send(t, "POST", srv.URL+"/api/test/echo?page=3", "application/json", `{"name":"ada"}`, nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var got envelope[echoOutput]
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Success || got.Message == "" || got.Data.Name != "ada" || got.Data.Page != 3 {
		t.Fatalf("body = %s", body)
	}
	if strings.Contains(string(body), "$schema") {
		t.Errorf("body carries a $schema link: %s", body)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	srv, logs := newTestServer(t)
	t.Run("a sane client id is kept", func(t *testing.T) {
		res, _ := send(t, "GET", srv.URL+"/health", "", "", http.Header{"X-Request-Id": {"req-42.a"}})
		if got := res.Header.Get("X-Request-ID"); got != "req-42.a" {
			t.Fatalf("X-Request-ID = %q", got)
		}
		if !strings.Contains(logs.String(), `"request_id":"req-42.a"`) {
			t.Error("the request id is not in the log")
		}
	})
	for _, bad := range []string{"", "has space", strings.Repeat("x", 200), `quote"`} {
		res, _ := send(t, "GET", srv.URL+"/health", "", "", http.Header{"X-Request-Id": {bad}})
		got := res.Header.Get("X-Request-ID")
		if got == "" || got == bad || len(got) != 36 {
			t.Errorf("for %q the id %q was not replaced by a generated one", bad, got)
		}
	}
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	srv, logs := newTestServer(t)
	send(t, "POST", srv.URL+"/api/test/echo", "application/json", `{"name":"a","password":"hunter2hunter2"}`,
		http.Header{"Authorization": {"Bearer eyJsecret.token.value"}, "X-Request-Id": {"access-log-test"}})
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"access-log-test"`) && strings.Contains(l, `"msg":"request"`) {
			if line != nil {
				t.Fatal("more than one access log line for one request")
			}
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no access log line:\n%s", logs.String())
	}
	for key, want := range map[string]any{"method": "POST", "route": "/api/test/echo", "status": float64(200)} {
		if line[key] != want {
			t.Errorf("%s = %v, want %v", key, line[key], want)
		}
	}
	if _, ok := line["duration_ms"]; !ok {
		t.Error("no duration")
	}
	if all := logs.String(); strings.Contains(all, "hunter2") || strings.Contains(all, "eyJsecret") {
		t.Errorf("the log holds a secret:\n%s", all)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	preflight := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}}
	res, _ := send(t, "OPTIONS", srv.URL+"/api/test/echo", "", "", preflight)
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	res, _ = send(t, "GET", srv.URL+"/health", "", "", http.Header{"Origin": {"https://evil.example"}})
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("an unlisted origin was allowed")
	}
}

func TestDocs(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	for path, want := range map[string]string{
		"/api/docs":              "<html",
		"/api/docs/":             "<html",
		"/api/docs/openapi.json": `"openapi"`,
		"/api/docs/openapi.yaml": "openapi:",
	} {
		res, body := send(t, "GET", srv.URL+path, "", "", nil)
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %.200s", path, res.StatusCode, body)
		}
	}
	_, index := send(t, "GET", srv.URL+"/api/docs", "", "", nil)
	if strings.Contains(string(index), "//cdn") || strings.Contains(string(index), "unpkg.com") {
		t.Error("the docs page loads assets from a CDN")
	}
}
