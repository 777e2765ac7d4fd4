package apptest

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/smtp/smtptest"
)

// AppURL is the front end the links of test mails point at.
const AppURL = "https://app.example.test"

// MailEnviron returns the variables that send an instance's mail to srv,
// retrying failures quickly.
func MailEnviron(srv *smtptest.Server) map[string]string {
	return map[string]string{
		"SMTP_HOST":                    srv.Host,
		"SMTP_PORT":                    strconv.Itoa(srv.SMTPPort),
		"SMTP_FROM":                    "Acme Cloud <no-reply@acme.example>",
		"TENANTRY_APP_URL":             AppURL,
		"TENANTRY_APP_NAME":            "Acme Cloud",
		"TENANTRY_MAIL_RETRY_INTERVAL": "200ms",
	}
}

// ConfigWith returns Config(t, shape) with extra variables set.
func ConfigWith(t testing.TB, shape config.Shape, extra map[string]string) config.Config {
	t.Helper()
	env := Environ(t, shape)
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// StartWithMail starts an instance for shape whose mail goes to a new
// Mailpit, with extra variables set, and returns both. The test is skipped
// without a Mailpit binary.
func StartWithMail(t testing.TB, shape config.Shape, extra map[string]string) (*Env, *smtptest.Server) {
	t.Helper()
	RequireShape(t, shape)
	srv := smtptest.Start(t, smtptest.Options{})
	env := MailEnviron(srv)
	for k, v := range extra {
		env[k] = v
	}
	return Start(t, ConfigWith(t, shape, env)), srv
}

// DeliveryStatus reads a mail delivery's status and attempts from the
// control database.
func (e *Env) DeliveryStatus(t testing.TB, id string) (status string, attempts int) {
	t.Helper()
	if err := e.App.Engines.Control.QueryRow(context.Background(), `SELECT status, attempts FROM mail_deliveries WHERE id = $1`, id).
		Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	return status, attempts
}

// Deliveries lists the ids and statuses of the deliveries to an address,
// oldest first.
func (e *Env) Deliveries(t testing.TB, to, kind string) map[string]string {
	t.Helper()
	rows, err := e.App.Engines.Control.Query(context.Background(), `SELECT CAST(id AS TEXT), status FROM mail_deliveries WHERE recipient = $1 AND kind = $2`, to, kind)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			t.Fatal(err)
		}
		out[id] = status
	}
	return out
}

// WaitDeliveries waits until every delivery to an address of a kind is in
// a final state, and at least n exist, and returns their statuses.
func (e *Env) WaitDeliveries(t testing.TB, to, kind string, n int, timeout time.Duration) map[string]string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := e.Deliveries(t, to, kind)
		done := len(got) >= n
		for _, s := range got {
			if s == "queued" || s == "retrying" {
				done = false
			}
		}
		if done {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s to %s after %s: %v, want %d finished", kind, to, timeout, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Post sends a JSON POST.
func (e *Env) Post(t testing.TB, path, token string, body any) *Response {
	t.Helper()
	return e.Do(t, Request{Method: http.MethodPost, Path: path, Token: token, Body: body})
}

// WaitMailIdle waits until no mail delivery is waiting to be sent, for
// tests that count what deliveries record (audit entries, events).
func (e *Env) WaitMailIdle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := e.App.Engines.Control.QueryRow(context.Background(),
			`SELECT count(*) FROM mail_deliveries WHERE status IN ('queued', 'retrying')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mail deliveries still waiting after a minute", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
