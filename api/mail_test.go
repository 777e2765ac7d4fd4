package api_test

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/smtp/smtptest"
)

// mailWait bounds the wait for a mail: a job, a poll and a send.
const mailWait = 30 * time.Second

// withSubject returns the message of msgs whose subject contains s.
func withSubject(t *testing.T, msgs []smtptest.Message, s string) smtptest.Message {
	t.Helper()
	for _, m := range msgs {
		if strings.Contains(m.Subject, s) {
			return m
		}
	}
	var subjects []string
	for _, m := range msgs {
		subjects = append(subjects, m.Subject)
	}
	t.Fatalf("no message about %q among %q", s, subjects)
	return smtptest.Message{}
}

// waitSubject waits for a message to addr whose subject contains s.
func waitSubject(t *testing.T, srv *smtptest.Server, addr, s string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(mailWait)
	for {
		for _, m := range srv.To(t, addr) {
			if strings.Contains(m.Subject, s) {
				return m
			}
		}
		if time.Now().After(deadline) {
			withSubject(t, srv.To(t, addr), s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noTokensLogged fails the test if any token appears in the server's log.
func noTokensLogged(t *testing.T, env *apptest.Env, tokens ...string) {
	t.Helper()
	logs := env.Logs.String()
	for _, tok := range tokens {
		if tok != "" && strings.Contains(logs, tok) {
			t.Errorf("a token is in the log:\n%s", logs)
		}
	}
}

// Ensure registering mails a verification link to the front end, that the
// link verifies the address once, and welcomes the owner.
func TestVerifyEmailThroughMail(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, srv := apptest.StartWithMail(t, shape, nil)
		u := env.SignUp(t, "Vera")
		var me map[string]any
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 200, "").Data(t, &me)
		if me["email_verified"] != false || me["locale"] != "en" {
			t.Errorf("a new account = %v", me)
		}
		m := waitSubject(t, srv, u.Email, "Confirm your email address for Acme Cloud")
		if m.From.Address != "no-reply@acme.example" || !strings.Contains(m.HTML, "/verify-email?token=") {
			t.Errorf("mail = %+v", m)
		}
		link := smtptest.Link(t, m, "/verify-email")
		if link.Scheme+"://"+link.Host != apptest.AppURL {
			t.Errorf("link %s does not point at TENANTRY_APP_URL", link)
		}
		token := link.Query().Get("token")

		tampered := []byte(token)
		tampered[5] ^= 1
		env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": string(tampered)}).Expect(t, 400, "INVALID_TOKEN")
		env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": "short"}).Expect(t, 400, "INVALID_TOKEN")

		var data struct {
			User map[string]any `json:"user"`
		}
		env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": token}).Expect(t, 200, "").Data(t, &data)
		if data.User["email_verified"] != true || data.User["id"] != u.ID {
			t.Errorf("verified user = %v", data.User)
		}
		env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": token}).Expect(t, 400, "INVALID_TOKEN")
		waitSubject(t, srv, u.Email, "Welcome to Acme Cloud")

		// Asking for another link once verified mails nothing.
		env.Post(t, "/api/auth/resend-verification", "", map[string]string{"email": u.Email}).Expect(t, 202, "")
		time.Sleep(time.Second)
		if n := len(env.Deliveries(t, u.Email, "verify_email")); n != 1 {
			t.Errorf("%d verification deliveries after verifying, want 1", n)
		}
		noTokensLogged(t, env, token)
	})
}

// Ensure a password reset goes through the mail, revokes every session,
// lifts the lockout, and that its token works once, for an hour.
func TestPasswordResetThroughMail(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, srv := apptest.StartWithMail(t, shape, nil)
		u := env.SignUp(t, "Rose")
		other := env.Login(t, &apptest.User{Email: u.Email})
		for range 5 {
			env.Post(t, "/api/auth/login", "", map[string]string{"email": u.Email, "password": "wrong-password-1"})
		}
		env.Post(t, "/api/auth/login", "", map[string]string{"email": u.Email, "password": apptest.Password}).Expect(t, 423, "ACCOUNT_LOCKED")

		env.Post(t, "/api/auth/password-reset/request", "", map[string]string{"email": strings.ToUpper(u.Email)}).Expect(t, 202, "")
		token := smtptest.Token(t, waitSubject(t, srv, u.Email, "Reset your Acme Cloud password"), "/reset-password")

		env.Post(t, "/api/auth/password-reset/confirm", "", map[string]string{"token": token, "new_password": "short"}).Expect(t, 400, "VALIDATION_ERROR")
		var res struct {
			RevokedSessions int `json:"revoked_sessions"`
		}
		env.Post(t, "/api/auth/password-reset/confirm", "", map[string]string{"token": token, "new_password": "brand-new-7"}).
			Expect(t, 200, "").Data(t, &res)
		if res.RevokedSessions != 2 {
			t.Errorf("revoked %d sessions, want 2", res.RevokedSessions)
		}
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		env.Get(t, "/api/users/me", other.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		env.Post(t, "/api/auth/login", "", map[string]string{"email": u.Email, "password": apptest.Password}).Expect(t, 401, "INVALID_CREDENTIALS")
		env.Post(t, "/api/auth/login", "", map[string]string{"email": u.Email, "password": "brand-new-7"}).Expect(t, 200, "")
		env.Post(t, "/api/auth/password-reset/confirm", "", map[string]string{"token": token, "new_password": "another-one-8"}).Expect(t, 400, "INVALID_TOKEN")
		waitSubject(t, srv, u.Email, "Your Acme Cloud password was reset")

		// An expired token is refused.
		env.Post(t, "/api/auth/password-reset/request", "", map[string]string{"email": u.Email}).Expect(t, 202, "")
		deadline := time.Now().Add(mailWait)
		var second string
		for second == "" || second == token {
			msgs := srv.To(t, u.Email)
			for _, m := range msgs {
				if strings.Contains(m.Subject, "Reset your") {
					if tok := smtptest.Token(t, m, "/reset-password"); tok != token {
						second = tok
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no second reset mail")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, err := env.App.Engines.Control.Exec(context.Background(), `UPDATE account_tokens SET expires_at = $1 WHERE purpose = 'password_reset'`,
			time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		env.Post(t, "/api/auth/password-reset/confirm", "", map[string]string{"token": second, "new_password": "another-one-8"}).Expect(t, 400, "INVALID_TOKEN")
		noTokensLogged(t, env, token, second)
	})
}

// timedPair returns the median durations of n calls of a and of b, made in
// turn, so that a change of the machine's load weighs on both alike.
func timedPair(n int, a, b func()) (time.Duration, time.Duration) {
	da, db := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		a()
		da[i] = time.Since(start)
		start = time.Now()
		b()
		db[i] = time.Since(start)
	}
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	return median(da), median(db)
}

// closeEnough reports whether two medians differ by no more than noise: a
// shared machine's scheduling moves single requests by tens of
// milliseconds, where a lookup or a write more would show as a steady
// difference of several. Under -short (the race detector's run, whose
// overhead swamps timings) every pair is close enough.
func closeEnough(a, b time.Duration) bool {
	if testing.Short() {
		return true
	}
	d := a - b
	if d < 0 {
		d = -d
	}
	return d < 25*time.Millisecond || d < max(a, b)/2
}

// Ensure the requests that mail an address answer alike, in the same
// time, whether or not an account has the address.
func TestMailRequestsRevealNoAccount(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, srv := apptest.StartWithMail(t, shape, map[string]string{"TENANTRY_REQUIRE_EMAIL_VERIFICATION": "true"})
		known := env.Register(t, "Known")
		waitSubject(t, srv, known.Email, "Confirm your email")
		for _, path := range []string{"/api/auth/password-reset/request", "/api/auth/resend-verification"} {
			a := env.Post(t, path, "", map[string]string{"email": known.Email}).Expect(t, 202, "")
			b := env.Post(t, path, "", map[string]string{"email": "nobody.at.all@example.com"}).Expect(t, 202, "")
			if string(a.Body) != string(b.Body) {
				t.Errorf("%s: %s and %s differ", path, a.Body, b.Body)
			}
			tk, tu := timedPair(21, func() { env.Post(t, path, "", map[string]string{"email": known.Email}) },
				func() { env.Post(t, path, "", map[string]string{"email": "nobody.at.all@example.com"}) })
			t.Logf("%s: median %s for a known address, %s for an unknown one", path, tk, tu)
			if !closeEnough(tk, tu) {
				t.Errorf("%s: %s for a known address, %s for an unknown one", path, tk, tu)
			}
		}

		// Registering an address that has an account answers like a new
		// registration, and mails the owner instead.
		body := func(email string) map[string]string {
			return map[string]string{"first_name": "Eve", "last_name": "Probe", "email": email, "password": "Probing-123"}
		}
		var dup, fresh struct {
			User userJSON `json:"user"`
		}
		rd := env.Post(t, "/api/auth/register", "", body(known.Email)).Expect(t, 201, "")
		rd.Data(t, &dup)
		rf := env.Post(t, "/api/auth/register", "", body("fresh.one@example.com")).Expect(t, 201, "")
		rf.Data(t, &fresh)
		if dup.User.ID == known.ID || len(dup.User.ID) != 36 || dup.User.FirstName != "Eve" || dup.User.Email != known.Email || !dup.User.IsActive {
			t.Errorf("duplicate answered %+v", dup.User)
		}
		// Apart from what differs between any two registrations, the
		// answers are the same.
		masked := func(r *apptest.Response, u userJSON) string {
			return strings.NewReplacer(u.ID, "ID", u.Email, "EMAIL", u.CreatedAt, "TIME", u.UpdatedAt, "TIME").Replace(string(r.Body))
		}
		if masked(rd, dup.User) != masked(rf, fresh.User) || rd.Header.Get("Content-Type") != rf.Header.Get("Content-Type") {
			t.Errorf("answers differ:\n%s\n%s", rd.Body, rf.Body)
		}
		n := 0
		td, tf := timedPair(11, func() { env.Post(t, "/api/auth/register", "", body(known.Email)) }, func() {
			n++
			env.Post(t, "/api/auth/register", "", body("fresh"+strings.Repeat("x", n)+"@example.com"))
		})
		t.Logf("register: median %s for a known address, %s for a new one", td, tf)
		if !closeEnough(td, tf) {
			t.Errorf("register: %s for a known address, %s for a new one", td, tf)
		}
		waitSubject(t, srv, known.Email, "Someone tried to register on Acme Cloud with your address")
		env.Post(t, "/api/auth/login", "", map[string]string{"email": known.Email, "password": "Probing-123"}).Expect(t, 401, "INVALID_CREDENTIALS")
	})
}

// Ensure that with verification required an unverified account signs in
// but reaches no tenant until it verifies.
func TestUnverifiedAccountsReachNoTenant(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, srv := apptest.StartWithMail(t, shape, map[string]string{"TENANTRY_REQUIRE_EMAIL_VERIFICATION": "true"})
		owner := env.SignUp(t, "Owner")
		env.Post(t, "/api/tenants", owner.AccessToken, map[string]string{"name": "Acme"}).Expect(t, 403, "EMAIL_NOT_VERIFIED")
		token := smtptest.Token(t, waitSubject(t, srv, owner.Email, "Confirm"), "/verify-email")
		env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": token}).Expect(t, 200, "")
		tenantID := env.CreateTenant(t, owner, "Acme")

		member := env.SignUp(t, "Member")
		env.Post(t, "/api/tenants/"+tenantID+"/users", owner.AccessToken, map[string]string{"email": member.Email, "role": "user"}).Expect(t, 201, "")
		env.Get(t, "/api/tenants/"+tenantID, member.AccessToken).Expect(t, 403, "EMAIL_NOT_VERIFIED")
		env.Get(t, "/api/tenants/"+tenantID+"/documents", member.AccessToken).Expect(t, 403, "EMAIL_NOT_VERIFIED")
		env.Get(t, "/api/users/me", member.AccessToken).Expect(t, 200, "")

		// Another link, asked for by address, verifies too.
		env.Post(t, "/api/auth/resend-verification", "", map[string]string{"email": member.Email}).Expect(t, 202, "")
		msgs := srv.WaitFor(t, member.Email, 2, mailWait)
		token = smtptest.Token(t, withSubject(t, msgs[:1], "Confirm"), "/verify-email")
		env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": token}).Expect(t, 200, "")
		env.Get(t, "/api/tenants/"+tenantID, member.AccessToken).Expect(t, 200, "")
	})
}

// Ensure invitations reach new and existing users by mail, and that every
// token that is not good is refused.
func TestInvitationsThroughMail(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, srv := apptest.StartWithMail(t, shape, nil)
		admin := env.SignUp(t, "Admin")
		tenantID := env.CreateTenant(t, admin, "Acme")
		otherTenant := env.CreateTenant(t, admin, "Other")

		t.Run("new user", func(t *testing.T) {
			addr := "newcomer@example.com"
			var inv map[string]any
			env.Post(t, "/api/tenants/"+tenantID+"/invitations", admin.AccessToken, map[string]string{"email": "NewComer@Example.com", "role": "user"}).
				Expect(t, 201, "").Data(t, &inv)
			if inv["email"] != addr || inv["role"] != "user" || inv["expired"] != false {
				t.Errorf("invitation = %v", inv)
			}
			env.Post(t, "/api/tenants/"+tenantID+"/invitations", admin.AccessToken, map[string]string{"email": addr, "role": "user"}).Expect(t, 409, "CONFLICT")
			m := waitSubject(t, srv, addr, "Admin Tester invited you to Acme on Acme Cloud")
			token := smtptest.Token(t, m, "/invitations/accept")

			env.Post(t, "/api/invitations/accept", "", map[string]any{"token": token}).Expect(t, 400, "VALIDATION_ERROR")
			var acc map[string]any
			env.Post(t, "/api/invitations/accept", "", map[string]any{"token": token, "first_name": "New", "last_name": "Comer", "password": "Joining-123"}).
				Expect(t, 200, "").Data(t, &acc)
			if acc["tenant_id"] != tenantID || acc["role"] != "user" || acc["created_account"] != true {
				t.Errorf("accepted = %v", acc)
			}
			res := env.Post(t, "/api/auth/login", "", map[string]string{"email": addr, "password": "Joining-123"}).Expect(t, 200, "")
			var login loginJSON
			res.Data(t, &login)
			if len(login.Tenants) != 1 || login.Tenants[0].ID != tenantID {
				t.Errorf("tenants = %+v", login.Tenants)
			}
			var me map[string]any
			env.Get(t, "/api/users/me", login.AccessToken).Data(t, &me)
			if me["email_verified"] != true {
				t.Errorf("the invited account's address is not verified: %v", me)
			}
			env.Post(t, "/api/invitations/accept", "", map[string]any{"token": token, "first_name": "A", "last_name": "B", "password": "Joining-123"}).
				Expect(t, 400, "INVALID_TOKEN")
			waitSubject(t, srv, addr, "Welcome to Acme Cloud")
			noTokensLogged(t, env, token)
		})

		t.Run("existing user", func(t *testing.T) {
			u := env.SignUp(t, "Existing")
			verify := smtptest.Token(t, waitSubject(t, srv, u.Email, "Confirm"), "/verify-email")
			stranger := env.SignUp(t, "Stranger")
			var inv map[string]any
			env.Post(t, "/api/tenants/"+tenantID+"/invitations", admin.AccessToken, map[string]string{"email": u.Email, "role": "viewer"}).
				Expect(t, 201, "").Data(t, &inv)
			token := smtptest.Token(t, waitSubject(t, srv, u.Email, "invited you to Acme"), "/invitations/accept")

			// Another user's invitation.
			env.Post(t, "/api/invitations/accept", stranger.AccessToken, map[string]any{"token": token}).Expect(t, 403, "FORBIDDEN")
			// Not verified yet.
			env.Post(t, "/api/invitations/accept", u.AccessToken, map[string]any{"token": token}).Expect(t, 403, "EMAIL_NOT_VERIFIED")
			env.Post(t, "/api/auth/verify-email", "", map[string]string{"token": verify}).Expect(t, 200, "")
			// Another tenant's invitation.
			env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + otherTenant + "/invitations/" + inv["id"].(string), Token: admin.AccessToken}).
				Expect(t, 404, "NOT_FOUND")
			env.Post(t, "/api/tenants/"+otherTenant+"/invitations/"+inv["id"].(string)+"/resend", admin.AccessToken, nil).Expect(t, 404, "NOT_FOUND")
			// An address with an account cannot make another.
			env.Post(t, "/api/invitations/accept", "", map[string]any{"token": token, "first_name": "A", "last_name": "B", "password": "Joining-123"}).
				Expect(t, 409, "CONFLICT")

			var acc map[string]any
			env.Post(t, "/api/invitations/accept", u.AccessToken, map[string]any{"token": token}).Expect(t, 200, "").Data(t, &acc)
			if acc["created_account"] != false || acc["user_id"] != u.ID || acc["role"] != "viewer" {
				t.Errorf("accepted = %v", acc)
			}
			env.Get(t, "/api/tenants/"+tenantID, u.AccessToken).Expect(t, 200, "")
			env.Post(t, "/api/invitations/accept", u.AccessToken, map[string]any{"token": token}).Expect(t, 400, "INVALID_TOKEN")
		})

		t.Run("revoked, resent, expired and tampered", func(t *testing.T) {
			addr := "later@example.com"
			var inv map[string]any
			env.Post(t, "/api/tenants/"+tenantID+"/invitations", admin.AccessToken, map[string]string{"email": addr, "role": "admin"}).
				Expect(t, 201, "").Data(t, &inv)
			id := inv["id"].(string)
			first := smtptest.Token(t, waitSubject(t, srv, addr, "invited you"), "/invitations/accept")
			env.Post(t, "/api/tenants/"+tenantID+"/invitations/"+id+"/resend", admin.AccessToken, nil).Expect(t, 200, "")
			msgs := srv.WaitFor(t, addr, 2, mailWait)
			second := smtptest.Token(t, msgs[0], "/invitations/accept")
			if second == first {
				t.Fatal("resending mailed the same token")
			}
			body := func(tok string) map[string]any {
				return map[string]any{"token": tok, "first_name": "L", "last_name": "Ater", "password": "Joining-123"}
			}
			env.Post(t, "/api/invitations/accept", "", body(first)).Expect(t, 400, "INVALID_TOKEN")
			tampered := []byte(second)
			tampered[10] ^= 1
			env.Post(t, "/api/invitations/accept", "", body(string(tampered))).Expect(t, 400, "INVALID_TOKEN")

			var list struct {
				Invitations []map[string]any `json:"invitations"`
				Pagination  struct {
					Total int `json:"total"`
				} `json:"pagination"`
			}
			env.Get(t, "/api/tenants/"+tenantID+"/invitations?per_page=1", admin.AccessToken).Expect(t, 200, "").Data(t, &list)
			if list.Pagination.Total != 1 || len(list.Invitations) != 1 || list.Invitations[0]["id"] != id {
				t.Errorf("pending = %+v", list)
			}

			if _, err := env.App.Engines.Control.Exec(context.Background(), `UPDATE invitations SET expires_at = $2 WHERE id = $1`, id, time.Now().Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			env.Post(t, "/api/invitations/accept", "", body(second)).Expect(t, 400, "INVALID_TOKEN")

			env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + tenantID + "/invitations/" + id, Token: admin.AccessToken}).Expect(t, 200, "")
			env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + tenantID + "/invitations/" + id, Token: admin.AccessToken}).Expect(t, 404, "NOT_FOUND")
			env.Post(t, "/api/invitations/accept", "", body(second)).Expect(t, 400, "INVALID_TOKEN")
			noTokensLogged(t, env, first, second)
		})

		t.Run("members by email", func(t *testing.T) {
			u := env.SignUp(t, "ByEmail")
			env.Post(t, "/api/tenants/"+tenantID+"/users", admin.AccessToken, map[string]string{"email": strings.ToUpper(u.Email), "role": "viewer"}).Expect(t, 201, "")
			env.Post(t, "/api/tenants/"+tenantID+"/users", admin.AccessToken, map[string]string{"email": "nobody.here@example.com", "role": "viewer"}).Expect(t, 404, "NOT_FOUND")
			env.Post(t, "/api/tenants/"+tenantID+"/users", admin.AccessToken, map[string]string{"role": "viewer"}).Expect(t, 400, "VALIDATION_ERROR")
			env.Post(t, "/api/tenants/"+tenantID+"/invitations", admin.AccessToken, map[string]string{"email": u.Email, "role": "user"}).Expect(t, 409, "CONFLICT")
		})
	})
}

// Ensure the security alerts reach the account's owner, in their language.
func TestSecurityAlertsByMail(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, srv := apptest.StartWithMail(t, shape, nil)
		u := env.SignUp(t, "Alert")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/users/me", Token: u.AccessToken, Body: map[string]string{"locale": "fr"}}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/users/me", Token: u.AccessToken, Body: map[string]string{"locale": "de"}}).Expect(t, 400, "")

		// The same device again is no news; another one is.
		env.Login(t, u)
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/login", Header: http.Header{"User-Agent": {"NewPhone/1.0"}},
			Body: map[string]string{"email": u.Email, "password": apptest.Password}}).Expect(t, 200, "")
		m := waitSubject(t, srv, u.Email, "Nouvelle connexion à votre compte Acme Cloud")
		if !strings.Contains(m.Text, "NewPhone/1.0") {
			t.Errorf("the alert does not name the device:\n%s", m.Text)
		}

		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/users/me/password", Token: u.AccessToken,
			Body: map[string]string{"current_password": apptest.Password, "new_password": "Changed-456"}}).Expect(t, 200, "")
		waitSubject(t, srv, u.Email, "Votre mot de passe Acme Cloud a été modifié")

		for range 5 {
			env.Post(t, "/api/auth/login", "", map[string]string{"email": u.Email, "password": "wrong-password-1"})
		}
		waitSubject(t, srv, u.Email, "Votre compte Acme Cloud a été verrouillé")
		// An address nobody registered is locked alike, and mails no one.
		for range 5 {
			env.Post(t, "/api/auth/login", "", map[string]string{"email": "ghost@example.com", "password": "wrong-password-1"})
		}
		time.Sleep(time.Second)
		if got := srv.To(t, "ghost@example.com"); len(got) != 0 {
			t.Errorf("%d mails to an address nobody registered", len(got))
		}
		var logins int
		for _, m := range srv.To(t, u.Email) {
			if strings.Contains(m.Subject, "Nouvelle connexion") {
				logins++
			}
		}
		if logins != 1 {
			t.Errorf("%d new sign-in alerts, want 1", logins)
		}
	})
}
