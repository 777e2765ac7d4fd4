package apptest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Request describes one HTTP request to an Env.
type Request struct {
	Method string
	Path   string
	// Body is sent as JSON unless it is a string, []byte or io.Reader,
	// which are sent as they are (an io.Reader chunked, unless
	// ContentLength declares its length).
	Body          any
	ContentLength int64
	Token         string
	ContentType   string
	Header        http.Header
}

// Response is a fully read HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req, reads the whole response and checks it against the
// server's OpenAPI document (see checkResponse).
func (e *Env) Do(t testing.TB, req Request) *Response {
	t.Helper()
	var body io.Reader
	contentType := req.ContentType
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	case io.Reader:
		body = b
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request body: %v", err)
		}
		body = bytes.NewReader(buf)
		if contentType == "" {
			contentType = "application/json"
		}
	}
	r, err := http.NewRequest(req.Method, e.URL+req.Path, body)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for k, v := range req.Header {
		r.Header[k] = v
	}
	if req.ContentLength > 0 {
		r.ContentLength = req.ContentLength
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if req.Token != "" {
		r.Header.Set("Authorization", "Bearer "+req.Token)
	}
	res, err := e.Server.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	e.checkResponse(t, r, res, data)
	out := &Response{Status: res.StatusCode, Header: res.Header, Body: data}
	if e.OnResponse != nil {
		e.OnResponse(out)
	}
	return out
}

// Get is Do for a GET with an optional token.
func (e *Env) Get(t testing.TB, path, token string) *Response {
	t.Helper()
	return e.Do(t, Request{Method: http.MethodGet, Path: path, Token: token})
}

// JSON decodes the body into a generic map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response: %v\n%s", err, r.Body)
	}
}

// Expect fails the test unless the status is want; for errors it also
// checks the envelope's code when code is not empty.
func (r *Response) Expect(t testing.TB, want int, code string) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status = %d, want %d\n%s", r.Status, want, r.Body)
	}
	if code != "" {
		if got := r.ErrorCode(t); got != code {
			t.Fatalf("error code = %q, want %q\n%s", got, code, r.Body)
		}
	}
	return r
}

// ErrorCode returns error.code of an error envelope, checking its shape.
func (r *Response) ErrorCode(t testing.TB) string {
	t.Helper()
	var env struct {
		Success *bool `json:"success"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.Decode(t, &env)
	if env.Success == nil || *env.Success || env.Error == nil || env.Error.Message == "" {
		t.Fatalf("not an error envelope: %s", r.Body)
	}
	return env.Error.Code
}

// Data decodes the data member of a success envelope into v.
func (r *Response) Data(t testing.TB, v any) {
	t.Helper()
	var env struct {
		Success *bool           `json:"success"`
		Message *string         `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	r.Decode(t, &env)
	if env.Success == nil || !*env.Success || env.Message == nil {
		t.Fatalf("not a success envelope: %s", r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(env.Data, v); err != nil {
			t.Fatalf("decode data: %v\n%s", err, r.Body)
		}
	}
}

// LogBuffer collects a server's JSON log lines, safely across goroutines.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Records returns each log line decoded.
func (b *LogBuffer) Records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}
