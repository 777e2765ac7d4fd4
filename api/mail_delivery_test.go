package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/smtp/smtptest"
)

type deliveryJSON struct {
	ID        string  `json:"id"`
	Kind      string  `json:"kind"`
	To        string  `json:"to"`
	Status    string  `json:"status"`
	Attempts  int     `json:"attempts"`
	LastError string  `json:"last_error"`
	SentAt    *string `json:"sent_at"`
}

func adminMail(t *testing.T, env *apptest.Env, token, query string) []deliveryJSON {
	t.Helper()
	var out struct {
		Deliveries []deliveryJSON `json:"deliveries"`
	}
	env.Get(t, "/api/admin/mail"+query, token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out.Deliveries
}

// Ensure a permanent refusal is recorded and not retried, that a mail
// queued while the SMTP server is down is delivered once it is back, once,
// and that administrators see both, with their events and audit entries.
func TestMailDeliveryOutcomes(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{AllowedRecipients: `@example\.com$`})
		env := apptest.Start(t, apptest.ConfigWith(t, shape, apptest.MailEnviron(srv)))
		root := signInPlatformAdmin(t, env)

		t.Run("permanent refusal", func(t *testing.T) {
			addr := "someone@refused.example.org"
			env.Post(t, "/api/auth/register", "", map[string]string{"first_name": "No", "last_name": "Way", "email": addr, "password": "Refused-123"}).
				Expect(t, 201, "")
			got := env.WaitDeliveries(t, addr, "verify_email", 1, mailWait)
			for id, status := range got {
				if status != "refused" {
					t.Fatalf("status = %s, want refused", status)
				}
				time.Sleep(2 * time.Second)
				if _, attempts := env.DeliveryStatus(t, id); attempts != 1 {
					t.Errorf("a refused mail was tried %d times", attempts)
				}
			}
			list := adminMail(t, env, root.AccessToken, "?status=refused")
			if len(list) != 1 || list[0].To != addr || !strings.Contains(list[0].LastError, "550") || list[0].SentAt != nil {
				t.Errorf("refused deliveries = %+v", list)
			}
		})

		t.Run("server down", func(t *testing.T) {
			u := env.Register(t, "Patient")
			env.WaitDeliveries(t, u.Email, "verify_email", 1, mailWait)
			srv.Stop()
			start := time.Now()
			env.Post(t, "/api/auth/password-reset/request", "", map[string]string{"email": u.Email}).Expect(t, 202, "")
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("the request took %s with the SMTP server down", d)
			}
			deadline := time.Now().Add(mailWait)
			for {
				ids := env.Deliveries(t, u.Email, "password_reset")
				retried := false
				for id := range ids {
					status, attempts := env.DeliveryStatus(t, id)
					retried = status == "retrying" && attempts >= 2
				}
				if retried {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the delivery was not retried: %v", ids)
				}
				time.Sleep(100 * time.Millisecond)
			}
			srv.Restart()
			for _, status := range env.WaitDeliveries(t, u.Email, "password_reset", 1, 2*mailWait) {
				if status != "sent" {
					t.Fatalf("status = %s, want sent", status)
				}
			}
			time.Sleep(2 * time.Second)
			resets := 0
			for _, m := range srv.To(t, u.Email) {
				if strings.Contains(m.Subject, "Reset") {
					resets++
				}
			}
			if resets != 1 {
				t.Errorf("%d reset mails, want 1", resets)
			}
			list := adminMail(t, env, root.AccessToken, "?kind=password_reset&to="+u.Email)
			if len(list) != 1 || list[0].Status != "sent" || list[0].Attempts < 2 || list[0].LastError != "" || list[0].SentAt == nil {
				t.Errorf("deliveries = %+v", list)
			}
		})

		t.Run("recorded", func(t *testing.T) {
			var n int
			for _, ev := range []string{"mail.queued", "mail.sent", "mail.failed"} {
				if err := env.App.Engines.Control.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE event_type = $1`, ev).Scan(&n); err != nil {
					t.Fatal(err)
				} else if n == 0 {
					t.Errorf("no %s event", ev)
				}
			}
			for _, action := range []string{"mail.sent", "mail.refused", "auth.password_reset_request"} {
				if got := adminAudit(t, env, root.AccessToken, "?action="+action); len(got.Entries) == 0 {
					t.Errorf("no %s audit entry", action)
				}
			}
			u := env.SignUp(t, "Nosy")
			env.Get(t, "/api/admin/mail", u.AccessToken).Expect(t, 404, "NOT_FOUND")
			env.Get(t, "/api/admin/mail", "").Expect(t, 404, "NOT_FOUND")
		})
	})
}

// Ensure mail requests are limited per client and per address, counted
// alike whether or not an account has the address.
func TestMailRequestLimits(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.ConfigWith(t, config.Embedded, map[string]string{
		"TENANTRY_RATE_LIMIT_MAIL": "6/m", "TENANTRY_RATE_LIMIT_MAIL_PER_ADDRESS": "2/h"}))
	known := env.Register(t, "Limited")
	for _, addr := range []string{known.Email, "unknown.limited@example.com"} {
		for i := range 3 {
			res := env.Post(t, "/api/auth/password-reset/request", "", map[string]string{"email": addr})
			if want := map[bool]int{true: 202, false: 429}[i < 2]; res.Status != want {
				t.Fatalf("%s request %d: %d, want %d\n%s", addr, i+1, res.Status, want, res.Body)
			}
		}
	}
	// Six spent by this client: the seventh is refused whatever the address.
	env.Post(t, "/api/auth/resend-verification", "", map[string]string{"email": "other@example.com"}).Expect(t, 429, "RATE_LIMITED")
}
