// Package smtptest starts Mailpit (github.com/axllent/mailpit), a real SMTP
// server with an HTTP API to read what it received, for tests. The binary
// is named by TENANTRY_TEST_MAILPIT_BIN; without it the tests that need one
// are skipped, with a message saying how to enable them. Each server runs
// on free loopback ports with a store of its own, and stops when its test
// ends.
package smtptest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BinEnv names the mailpit binary tests start.
const BinEnv = "TENANTRY_TEST_MAILPIT_BIN"

// Options change how a server is started.
type Options struct {
	// AllowedRecipients, when set, is a regular expression: recipients
	// that do not match are refused with a permanent 5xx.
	AllowedRecipients string
	// TLSCert and TLSKey, PEM files, offer STARTTLS; with RequireTLS the
	// server speaks TLS from the first byte instead (implicit TLS).
	TLSCert, TLSKey string
	RequireTLS      bool
	// RequireSTARTTLS refuses clients that do not upgrade.
	RequireSTARTTLS bool
}

// Server is a running Mailpit.
type Server struct {
	// Host and SMTPPort are where it accepts SMTP; HTTPURL is its API.
	Host     string
	SMTPPort int
	HTTPURL  string

	t    testing.TB
	bin  string
	args []string
	log  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Require skips the test unless a Mailpit binary is configured, and
// returns it.
func Require(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		t.Skipf("SMTP integration tests skipped: set %s to a mailpit binary (go install github.com/axllent/mailpit@v1.33.1) to run them", BinEnv)
	}
	return bin
}

// Start starts a Mailpit for this test.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Require(t)
	dir := t.TempDir()
	smtpPort, httpPort := FreePort(t), FreePort(t)
	s := &Server{Host: "127.0.0.1", SMTPPort: smtpPort, HTTPURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort),
		t: t, bin: bin, log: filepath.Join(dir, "mailpit.log")}
	s.args = []string{
		"--smtp", fmt.Sprintf("127.0.0.1:%d", smtpPort),
		"--listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--disable-version-check", "--smtp-disable-rdns", "--quiet",
		"--smtp-auth-accept-any", "--max", "0",
	}
	if !opts.RequireTLS && !opts.RequireSTARTTLS {
		// Mailpit refuses this beside a TLS requirement.
		s.args = append(s.args, "--smtp-auth-allow-insecure")
	}
	if opts.AllowedRecipients != "" {
		s.args = append(s.args, "--smtp-allowed-recipients", opts.AllowedRecipients)
	}
	if opts.TLSCert != "" {
		s.args = append(s.args, "--smtp-tls-cert", opts.TLSCert, "--smtp-tls-key", opts.TLSKey)
		if opts.RequireTLS {
			s.args = append(s.args, "--smtp-require-tls")
		} else if opts.RequireSTARTTLS {
			s.args = append(s.args, "--smtp-require-starttls")
		}
	}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the SMTP listener.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.SMTPPort)) }

// Stop stops the server; Restart starts it again on the same ports with
// the messages it had.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a stopped server and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start mailpit: %v", err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	s.exited = exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(s.HTTPURL + "/api/v1/info")
		if err == nil {
			res.Body.Close()
			if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
				c.Close()
				return
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			logs, _ := os.ReadFile(s.log)
			s.t.Fatalf("mailpit exited:\n%s", logs)
		default:
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(s.log)
			s.t.Fatalf("mailpit did not come up within 30s:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback port nothing listens on at the moment.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Address is a sender or recipient.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Message is a received message as Mailpit shows it.
type Message struct {
	ID        string    `json:"ID"`
	MessageID string    `json:"MessageID"`
	From      Address   `json:"From"`
	To        []Address `json:"To"`
	Subject   string    `json:"Subject"`
	Text      string    `json:"Text"`
	HTML      string    `json:"HTML"`
}

func (s *Server) get(path string, v any) error {
	res, err := http.Get(s.HTTPURL + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// Messages lists every message received, newest first, without bodies.
func (s *Server) Messages(t testing.TB) []Message {
	t.Helper()
	var list struct {
		Messages []Message `json:"messages"`
	}
	if err := s.get("/api/v1/messages?limit=1000", &list); err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	return list.Messages
}

// To lists the messages received for an address, newest first, with
// their bodies.
func (s *Server) To(t testing.TB, addr string) []Message {
	t.Helper()
	var out []Message
	for _, m := range s.Messages(t) {
		for _, to := range m.To {
			if strings.EqualFold(to.Address, addr) {
				out = append(out, s.Message(t, m.ID))
				break
			}
		}
	}
	return out
}

// Message reads one message with its bodies.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	var m Message
	if err := s.get("/api/v1/message/"+url.PathEscape(id), &m); err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	return m
}

// Headers reads one message's headers.
func (s *Server) Headers(t testing.TB, id string) map[string][]string {
	t.Helper()
	var h map[string][]string
	if err := s.get("/api/v1/message/"+url.PathEscape(id)+"/headers", &h); err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	return h
}

// WaitFor waits up to timeout until n messages were received for addr,
// and returns them, newest first.
func (s *Server) WaitFor(t testing.TB, addr string, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.To(t, addr)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d messages for %s after %s, want %d", len(got), addr, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Wait waits until ctx ends or n messages in all were received.
func (s *Server) Wait(ctx context.Context, t testing.TB, n int) []Message {
	t.Helper()
	for {
		got := s.Messages(t)
		if len(got) >= n || ctx.Err() != nil {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var linkPattern = regexp.MustCompile(`https?://[^\s"<>]+`)

// Link returns the first link in a message's plain text whose path is
// path ("/reset-password", say).
func Link(t testing.TB, m Message, path string) *url.URL {
	t.Helper()
	for _, raw := range linkPattern.FindAllString(m.Text, -1) {
		u, err := url.Parse(raw)
		if err == nil && u.Path == path {
			return u
		}
	}
	t.Fatalf("no %s link in the message %q:\n%s", path, m.Subject, m.Text)
	return nil
}

// Token returns the token of the first link to path in a message.
func Token(t testing.TB, m Message, path string) string {
	t.Helper()
	tok := Link(t, m, path).Query().Get("token")
	if tok == "" {
		t.Fatalf("the %s link of %q has no token", path, m.Subject)
	}
	return tok
}
