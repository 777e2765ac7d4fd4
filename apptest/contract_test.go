package apptest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// recordingTB records the failures reported to it instead of failing.
type recordingTB struct {
	testing.TB
	failures []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failures = append(r.failures, "fatal: "+fmt.Sprintf(format, args...))
}

// contractDocument documents one operation, GET /api/things/{id}, whose 200
// answer is an object with a required integer count and nothing else.
const contractDocument = `{
  "openapi": "3.1.0",
  "info": {"title": "contract test", "version": "1"},
  "paths": {"/api/things/{id}": {"get": {
    "operationId": "get-thing",
    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
      "type": "object", "additionalProperties": false, "required": ["count"],
      "properties": {"count": {"type": "integer"}}}}}}}
  }}}
}`

// Ensure responses are checked against the served document: a matching
// answer passes and is counted, a mismatch fails naming the operation,
// the status and what is wrong, a path the document lacks fails unless it
// answers the envelope's 404, and the documentation and the jobs dashboard
// are not checked.
func TestResponsesAreCheckedAgainstTheServedDocument(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+OpenAPIPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, contractDocument)
	})
	mux.HandleFunc("GET /api/things/good", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"count": 3}`)
	})
	mux.HandleFunc("GET /api/things/bad", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"count": "three", "extra": true}`)
	})
	mux.HandleFunc("GET /api/undocumented", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	})
	mux.HandleFunc("GET /api/unrouted", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"success": false, "error": {"code": "NOT_FOUND", "message": "The requested resource was not found"}}`)
	})
	mux.HandleFunc("GET /api/unrouted-plain", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "404 page not found")
	})
	mux.HandleFunc("GET /admin/jobs/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") })
	mux.HandleFunc("GET /api/docs/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env := &Env{Server: srv, URL: srv.URL}

	do := func(path string) []string {
		rec := &recordingTB{TB: t}
		before := checks.checked.Load()
		want := http.StatusOK
		if strings.HasPrefix(path, "/api/unrouted") {
			want = http.StatusNotFound
		}
		env.Do(rec, Request{Method: http.MethodGet, Path: path}).Expect(t, want, "")
		if checked := checks.checked.Load() - before; checked > 1 {
			t.Fatalf("GET %s counted %d responses", path, checked)
		}
		return rec.failures
	}

	before := checks.checked.Load()
	if f := do("/api/things/good"); len(f) != 0 {
		t.Fatalf("a matching response failed: %v", f)
	}
	if checks.checked.Load() == before {
		t.Fatal("a matching response was not counted")
	}
	f := do("/api/things/bad")
	if len(f) != 1 || !strings.Contains(f[0], "get-thing") || !strings.Contains(f[0], "answered 200") ||
		!strings.Contains(f[0], "count") || !strings.Contains(f[0], "extra") {
		t.Fatalf("a mismatch was reported as %q", f)
	}
	if f := do("/api/undocumented"); len(f) != 1 || !strings.Contains(f[0], "not in the document") {
		t.Fatalf("an undocumented path was reported as %q", f)
	}
	// A path no operation has may answer only the envelope's 404.
	if f := do("/api/unrouted"); len(f) != 0 {
		t.Fatalf("the contract's answer to an unknown path failed: %v", f)
	}
	if f := do("/api/unrouted-plain"); len(f) != 1 || !strings.Contains(f[0], "not in the document") {
		t.Fatalf("a 404 outside the envelope was reported as %q", f)
	}
	for _, skipped := range []string{"/admin/jobs/", "/api/docs/", OpenAPIPath} {
		before := checks.checked.Load()
		if f := do(skipped); len(f) != 0 || checks.checked.Load() != before {
			t.Fatalf("%s was checked: %v", skipped, f)
		}
	}
}
