package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/smtp/smtptest"
)

// Ensure `tenantry mail test` writes an .eml file with nothing configured,
// saying where.
func TestMailTestWritesAFileByDefault(t *testing.T) {
	t.Parallel()
	env := apptest.Environ(t, config.Embedded)
	code, out := runCLI(t, env, "mail", "test", "--to", "ops@example.com")
	if code != 0 {
		t.Fatalf("mail test: %d\n%s", code, out)
	}
	dir := filepath.Join(env["TENANTRY_DATA_DIR"], "mail")
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 || !strings.Contains(out, dir) {
		t.Fatalf("files %v; output:\n%s", files, out)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "To: <ops@example.com>") || !strings.Contains(string(b), "Subject: Test message from tenantry") {
		t.Errorf("the file:\n%s", b)
	}
	if code, out := runCLI(t, env, "mail", "test", "--to", "not an address"); code == 0 {
		t.Errorf("an invalid address was accepted:\n%s", out)
	}
}

// Ensure `tenantry mail test` sends through SMTP, and fails, saying why,
// when the server cannot be reached.
func TestMailTestThroughSMTP(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	env := apptest.Environ(t, config.Embedded)
	env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_FROM"] = srv.Host, strconv.Itoa(srv.SMTPPort), "ops@acme.example"
	code, out := runCLI(t, env, "mail", "test", "--to", "ops@example.com", "--locale", "fr")
	if code != 0 || !strings.Contains(out, "SMTP 127.0.0.1:"+strconv.Itoa(srv.SMTPPort)) {
		t.Fatalf("mail test: %d\n%s", code, out)
	}
	m := srv.WaitFor(t, "ops@example.com", 1, 10*time.Second)[0]
	if m.Subject != "Message de test de tenantry" || m.From.Address != "ops@acme.example" {
		t.Errorf("received %+v", m)
	}
	srv.Stop()
	code, out = runCLI(t, env, "mail", "test", "--to", "ops@example.com")
	if code == 0 || !strings.Contains(out, "connect") {
		t.Errorf("with the server down: %d\n%s", code, out)
	}
}
