package api_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// rawRequest writes a request's head and the first part of a body that
// claims to be length bytes long, then leaves the connection open.
func rawRequest(t *testing.T, env *apptest.Env, method, path, token, contentType string, length int, first string) net.Conn {
	t.Helper()
	u, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		method, path, u.Host, token, contentType, length)
	if _, err := conn.Write([]byte(head + first)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// requestLogged waits for the access log line of a request to route and
// returns it.
func requestLogged(t *testing.T, env *apptest.Env, method, route string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range env.Logs.Records(t) {
			if r["msg"] == "request" && r["method"] == method && r["route"] == route {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line for %s %s:\n%s", method, route, env.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errorLines returns the log lines at ERROR level.
func errorLines(t *testing.T, env *apptest.Env) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range env.Logs.Records(t) {
		if r["level"] == "ERROR" {
			out = append(out, r)
		}
	}
	return out
}

// Ensure a client that hangs up in the middle of sending its request is
// not reported as a server failure: no 500, nothing at ERROR level.
func TestClientHangingUpMidRequestIsNotAServerError(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Leaver")
		tenantID := env.CreateTenant(t, u, "Left")

		upload := "/api/tenants/" + tenantID + "/documents"
		boundary := "hangupboundary"
		first := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n" +
			"Content-Type: application/octet-stream\r\n\r\n" + strings.Repeat("x", 64<<10)
		conn := rawRequest(t, env, http.MethodPost, upload, u.AccessToken, "multipart/form-data; boundary="+boundary, 10<<20, first)
		time.Sleep(100 * time.Millisecond)
		conn.Close()
		line := requestLogged(t, env, http.MethodPost, "/api/tenants/{tenant_id}/documents")
		if status := line["status"].(float64); status >= 500 {
			t.Fatalf("an upload the client abandoned was logged as %v", status)
		}

		conn = rawRequest(t, env, http.MethodPost, "/api/tenants", u.AccessToken, "application/json", 1000, `{"name": "Half`)
		time.Sleep(100 * time.Millisecond)
		conn.Close()
		line = requestLogged(t, env, http.MethodPost, "/api/tenants")
		if status := line["status"].(float64); status >= 500 {
			t.Fatalf("a JSON body the client abandoned was logged as %v", status)
		}
		if lines := errorLines(t, env); len(lines) > 0 {
			t.Fatalf("clients hanging up were logged at ERROR: %v", lines)
		}
		// The server still answers on a fresh connection.
		env.Get(t, "/api/tenants/"+tenantID+"/documents", u.AccessToken).Expect(t, http.StatusOK, "")
	})
}

// readStatus reads the status line of the answer on conn, or returns 0 when
// the server closed the connection without one.
func readStatus(t *testing.T, conn net.Conn) int {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// Ensure a request body that stops arriving is cut after the idle timeout,
// upload or JSON, while a slow upload that keeps moving is not limited.
func TestStalledBodiesAreCut(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.BodyIdleTimeout = time.Second
		env := apptest.Start(t, cfg)
		u := env.SignUp(t, "Staller")
		tenantID := env.CreateTenant(t, u, "Stalled")
		upload := "/api/tenants/" + tenantID + "/documents"
		boundary := "stallboundary"
		head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n" +
			"Content-Type: application/octet-stream\r\n\r\n"
		tail := "\r\n--" + boundary + "--\r\n"

		conn := rawRequest(t, env, http.MethodPost, upload, u.AccessToken, "multipart/form-data; boundary="+boundary, 1<<20, head+strings.Repeat("s", 1<<10))
		if status := readStatus(t, conn); status != http.StatusRequestTimeout {
			t.Fatalf("an upload that stalled after 1 KiB: status %d, want 408 and the connection cut", status)
		}
		conn = rawRequest(t, env, http.MethodPost, "/api/tenants", u.AccessToken, "application/json", 100, `{"name": "Sta`)
		if status := readStatus(t, conn); status != http.StatusRequestTimeout {
			t.Fatalf("a JSON body that stalled: status %d, want 408", status)
		}

		// Slow but moving: 3 s in all, three times the idle timeout.
		chunk := strings.Repeat("m", 64)
		chunks := 12
		length := len(head) + chunks*len(chunk) + len(tail)
		conn = rawRequest(t, env, http.MethodPost, upload, u.AccessToken, "multipart/form-data; boundary="+boundary, length, head)
		for range chunks {
			time.Sleep(250 * time.Millisecond)
			if _, err := conn.Write([]byte(chunk)); err != nil {
				t.Fatalf("the server cut an upload that kept moving: %v", err)
			}
		}
		if _, err := conn.Write([]byte(tail)); err != nil {
			t.Fatal(err)
		}
		if status := readStatus(t, conn); status != http.StatusCreated {
			t.Fatalf("a slow upload that kept moving: status %d, want 201", status)
		}
		var list struct {
			Documents []apptest.Document `json:"documents"`
		}
		env.Get(t, upload, u.AccessToken).Expect(t, http.StatusOK, "").Data(t, &list)
		if len(list.Documents) != 1 || list.Documents[0].Filename != "slow.bin" {
			t.Fatalf("documents after one stalled and one slow upload: %+v", list.Documents)
		}
		if lines := errorLines(t, env); len(lines) > 0 {
			t.Fatalf("stalled bodies were logged at ERROR: %v", lines)
		}
	})
}
