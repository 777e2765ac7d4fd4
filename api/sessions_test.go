package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
)

const (
	firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
	curlUA    = "curl/8.5.0"
)

type sessionJSON struct {
	ID         string    `json:"id"`
	Device     string    `json:"device"`
	UserAgent  string    `json:"user_agent"`
	ClientIP   string    `json:"client_ip"`
	AuthMethod string    `json:"auth_method"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

type sessionListJSON struct {
	Sessions []sessionJSON `json:"sessions"`
	Total    int           `json:"total"`
}

type securityEventJSON struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Outcome    string          `json:"outcome"`
	OccurredAt time.Time       `json:"occurred_at"`
	ClientIP   string          `json:"client_ip"`
	UserAgent  string          `json:"user_agent"`
	Device     string          `json:"device"`
	Details    json.RawMessage `json:"details"`
}

func (e securityEventJSON) details(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Details, &m); err != nil || m == nil {
		t.Fatalf("details of %s are not an object: %s", e.Type, e.Details)
	}
	return m
}

type securityEventsJSON struct {
	Events     []securityEventJSON `json:"events"`
	Pagination struct {
		Page    int   `json:"page"`
		PerPage int   `json:"per_page"`
		Total   int64 `json:"total"`
		Pages   int64 `json:"pages"`
	} `json:"pagination"`
}

// loginFrom opens another session of u from a client with userAgent.
func loginFrom(t *testing.T, env *apptest.Env, u *apptest.User, userAgent string) *apptest.User {
	t.Helper()
	var data struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/login", Header: http.Header{"User-Agent": {userAgent}},
		Body: map[string]string{"email": u.Email, "password": apptest.Password}}).Expect(t, http.StatusOK, "").Data(t, &data)
	return &apptest.User{ID: u.ID, Email: u.Email, AccessToken: data.AccessToken, RefreshToken: data.RefreshToken}
}

func listSessions(t *testing.T, env *apptest.Env, path, token string) []sessionJSON {
	t.Helper()
	var out sessionListJSON
	env.Get(t, path, token).Expect(t, http.StatusOK, "").Data(t, &out)
	if out.Total != len(out.Sessions) {
		t.Fatalf("total %d for %d sessions", out.Total, len(out.Sessions))
	}
	return out.Sessions
}

func mySessions(t *testing.T, env *apptest.Env, token string) []sessionJSON {
	t.Helper()
	return listSessions(t, env, "/api/users/me/sessions", token)
}

// currentSession returns the id of the session of u's access token.
func currentSession(t *testing.T, env *apptest.Env, u *apptest.User) string {
	t.Helper()
	for _, s := range mySessions(t, env, u.AccessToken) {
		if s.Current {
			return s.ID
		}
	}
	t.Fatal("no session is current")
	return ""
}

// works reports the status a token gets from the cheapest authenticated
// route.
func works(t *testing.T, env *apptest.Env, u *apptest.User) int {
	t.Helper()
	return env.Get(t, "/api/users/me", u.AccessToken).Status
}

func revokedCount(t *testing.T, res *apptest.Response) int64 {
	t.Helper()
	var out struct {
		RevokedSessions int64 `json:"revoked_sessions"`
	}
	res.Expect(t, http.StatusOK, "").Data(t, &out)
	return out.RevokedSessions
}

// Ensure the caller sees each standing session with the device it was
// opened from, newest first, and which one is the request's own.
func TestMySessions(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		alice := env.Register(t, "Alice")
		fox := loginFrom(t, env, alice, firefoxUA)
		cli := loginFrom(t, env, alice, curlUA)
		env.SignUp(t, "Bob") // nothing of his shows

		list := mySessions(t, env, fox.AccessToken)
		if len(list) != 2 {
			t.Fatalf("sessions: %+v", list)
		}
		newest, oldest := list[0], list[1]
		if newest.Device != "curl" || newest.UserAgent != curlUA || newest.Current ||
			oldest.Device != "Firefox on Linux" || oldest.UserAgent != firefoxUA || !oldest.Current {
			t.Fatalf("sessions, newest first, seen from Firefox: %+v", list)
		}
		for _, s := range list {
			if s.AuthMethod != "password" || s.ClientIP == "" || s.LastUsedAt.Before(s.CreatedAt) || !s.ExpiresAt.After(s.CreatedAt) {
				t.Errorf("session %+v", s)
			}
		}
		if newest.CreatedAt.Before(oldest.CreatedAt) {
			t.Errorf("not newest first: %+v", list)
		}
		seen := mySessions(t, env, cli.AccessToken)
		if len(seen) != 2 || !seen[0].Current || seen[1].Current || seen[0].ID != newest.ID {
			t.Fatalf("sessions seen from curl: %+v", seen)
		}
		env.Get(t, "/api/users/me/sessions", "").Expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
	})
}

func lastUsed(t *testing.T, env *apptest.Env, sessionID string) time.Time {
	t.Helper()
	db := env.App.Engines.Control
	var at time.Time
	if err := db.QueryRow(context.Background(), `SELECT `+db.Dialect().Time("last_used_at")+` FROM sessions WHERE id = $1`, sessionID).
		Scan(sqldb.ScanTime(&at)); err != nil {
		t.Fatal(err)
	}
	return at
}

func setLastUsed(t *testing.T, env *apptest.Env, sessionID string, at time.Time) {
	t.Helper()
	if _, err := env.App.Engines.Control.Exec(context.Background(), `UPDATE sessions SET last_used_at = $2 WHERE id = $1`, sessionID, at); err != nil {
		t.Fatal(err)
	}
}

// Ensure a request records its session's use when the last one on record
// is more than a minute old, and writes nothing otherwise.
func TestSessionLastUse(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "User")
		id := currentSession(t, env, u)

		past := sqldb.Now().Add(-2 * time.Hour)
		setLastUsed(t, env, id, past)
		before := sqldb.Now()
		if status := works(t, env, u); status != http.StatusOK {
			t.Fatalf("GET /api/users/me: %d", status)
		}
		if got := lastUsed(t, env, id); got.Before(before) {
			t.Fatalf("last use %v after a request at %v; it was set to %v", got, before, past)
		}

		recent := sqldb.Now().Add(-time.Second)
		setLastUsed(t, env, id, recent)
		works(t, env, u)
		if got := lastUsed(t, env, id); !got.Equal(recent) {
			t.Fatalf("last use moved from %v to %v within a minute", recent, got)
		}
		if list := mySessions(t, env, u.AccessToken); !list[0].LastUsedAt.Equal(recent) {
			t.Fatalf("listed last use %v, want %v", list[0].LastUsedAt, recent)
		}
	})
}

// Ensure revoking one session stops its tokens at once and leaves the
// others, that another user's session is not found and untouched, and that
// revoking all others keeps the current one.
func TestRevokeMySessions(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		alice := env.Register(t, "Alice")
		a, b, c := loginFrom(t, env, alice, firefoxUA), loginFrom(t, env, alice, curlUA), loginFrom(t, env, alice, curlUA)
		bob := env.SignUp(t, "Bob")
		bID, bobID := currentSession(t, env, b), currentSession(t, env, bob)

		env.Do(t, del("/api/users/me/sessions/"+bID, a.AccessToken)).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/users/me", b.AccessToken).Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/refresh", Body: map[string]string{"refresh_token": b.RefreshToken}}).
			Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
		if works(t, env, a) != http.StatusOK || works(t, env, c) != http.StatusOK {
			t.Fatal("revoking one session ended another")
		}
		for _, s := range mySessions(t, env, a.AccessToken) {
			if s.ID == bID {
				t.Fatal("a revoked session is still listed")
			}
		}
		env.Do(t, del("/api/users/me/sessions/"+bID, a.AccessToken)).Expect(t, http.StatusNotFound, "NOT_FOUND")

		// Another user's session is no more found than an unknown one.
		env.Do(t, del("/api/users/me/sessions/"+bobID, a.AccessToken)).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Do(t, del("/api/users/me/sessions/00000000-0000-4000-8000-000000000000", a.AccessToken)).Expect(t, http.StatusNotFound, "NOT_FOUND")
		if works(t, env, bob) != http.StatusOK || len(mySessions(t, env, bob.AccessToken)) != 1 {
			t.Fatal("another user's session was touched")
		}
		env.Do(t, del("/api/users/me/sessions/not-a-uuid", a.AccessToken)).Expect(t, http.StatusBadRequest, "")
		env.Do(t, del("/api/users/me/sessions/"+bID, "")).Expect(t, http.StatusUnauthorized, "UNAUTHORIZED")

		d := loginFrom(t, env, alice, firefoxUA)
		if n := revokedCount(t, env.Do(t, del("/api/users/me/sessions", a.AccessToken))); n != 2 {
			t.Fatalf("revoked %d other sessions, want 2", n)
		}
		for _, u := range []*apptest.User{c, d} {
			env.Get(t, "/api/users/me", u.AccessToken).Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
		}
		if list := mySessions(t, env, a.AccessToken); len(list) != 1 || !list[0].Current {
			t.Fatalf("after revoking the others: %+v", list)
		}
		if n := revokedCount(t, env.Do(t, del("/api/users/me/sessions", a.AccessToken))); n != 0 {
			t.Fatalf("revoked %d sessions when none other stood", n)
		}
		if works(t, env, bob) != http.StatusOK {
			t.Fatal("revoking all of one's other sessions ended another user's")
		}

		// The current session too, like a logout.
		env.Do(t, del("/api/users/me/sessions/"+currentSession(t, env, a), a.AccessToken)).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/users/me", a.AccessToken).Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
	})
}

func securityEvents(t *testing.T, env *apptest.Env, token, query string) securityEventsJSON {
	t.Helper()
	var out securityEventsJSON
	env.Get(t, "/api/users/me/security-events"+query, token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

func eventTypes(events []securityEventJSON) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type + ":" + e.Outcome
	}
	return out
}

// Ensure the caller's security history shows their sign-ins, refused ones
// included, password changes and revocations, newest first, with only safe
// details, and nothing of another user.
func TestMySecurityEvents(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		alice := env.SignUp(t, "Alice")
		bob := env.SignUp(t, "Bob")
		wrong := func(u *apptest.User) {
			env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/login", Header: http.Header{"User-Agent": {curlUA}},
				Body: map[string]string{"email": u.Email, "password": "Wrong-pass-1"}}).Expect(t, http.StatusUnauthorized, "INVALID_CREDENTIALS")
		}
		wrong(alice)
		wrong(bob)
		other := loginFrom(t, env, alice, firefoxUA)
		otherID := currentSession(t, env, other)
		env.Do(t, del("/api/users/me/sessions/"+otherID, alice.AccessToken)).Expect(t, http.StatusOK, "")
		env.Do(t, put("/api/users/me/password", alice.AccessToken, map[string]string{"current_password": apptest.Password, "new_password": "Brand-new-9"})).
			Expect(t, http.StatusOK, "")

		got := securityEvents(t, env, alice.AccessToken, "")
		want := []string{"user.password_change:success", "user.session.revoke:success", "auth.login:success", "auth.login:denied", "auth.login:success"}
		if types := eventTypes(got.Events); len(types) != len(want) || got.Pagination.Total != int64(len(want)) {
			t.Fatalf("Alice's events %v, want %v", types, want)
		}
		for i, e := range got.Events {
			if e.Type+":"+e.Outcome != want[i] {
				t.Errorf("event %d is %s:%s, want %s", i, e.Type, e.Outcome, want[i])
			}
			if i > 0 && e.OccurredAt.After(got.Events[i-1].OccurredAt) {
				t.Errorf("not newest first: %v", eventTypes(got.Events))
			}
			if e.ID == "" || e.ClientIP == "" || e.Device == "" {
				t.Errorf("event %+v", e)
			}
			for _, k := range []string{"email", "status", "password", "token"} {
				if _, ok := e.details(t)[k]; ok {
					t.Errorf("%s shows %s: %s", e.Type, k, e.Details)
				}
			}
		}
		failed := got.Events[3]
		if failed.Device != "curl" || failed.details(t)["error_code"] != "INVALID_CREDENTIALS" {
			t.Errorf("the refused sign-in: %+v, %s", failed, failed.Details)
		}
		if d := got.Events[1].details(t); d["session_id"] != otherID || d["current"] != false {
			t.Errorf("the revocation's details: %v", d)
		}
		if d := got.Events[0].details(t); d["revoked_sessions"] != float64(0) {
			t.Errorf("the password change's details: %v", d)
		}

		if bobs := securityEvents(t, env, bob.AccessToken, ""); len(bobs.Events) != 2 ||
			bobs.Events[0].Type != "auth.login" || bobs.Events[0].Outcome == "success" || bobs.Events[1].Outcome != "success" {
			t.Errorf("Bob's events: %v", eventTypes(bobs.Events))
		}

		page := securityEvents(t, env, alice.AccessToken, "?per_page=2&page=3")
		if p := page.Pagination; p.Total != 5 || p.Pages != 3 || p.Page != 3 || len(page.Events) != 1 || page.Events[0].ID != got.Events[4].ID {
			t.Errorf("page 3 of 2: %+v %v", p, eventTypes(page.Events))
		}
		for _, q := range []string{"?page=0", "?per_page=101", "?per_page=x"} {
			env.Get(t, "/api/users/me/security-events"+q, alice.AccessToken).Expect(t, http.StatusBadRequest, "")
		}
		env.Get(t, "/api/users/me/security-events", "").Expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
	})
}

// Ensure sign-ins refused while the address is locked, and the failure that
// locked it, are in the account owner's history.
func TestSecurityEventsShowLockouts(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Locked")
		var statuses []int
		for range 6 {
			statuses = append(statuses, env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "Wrong-pass-1"})).Status)
		}
		if statuses[5] != http.StatusLocked {
			t.Fatalf("statuses %v: the address was not locked", statuses)
		}
		got := securityEvents(t, env, u.AccessToken, "?per_page=100").Events
		if len(got) != 7 {
			t.Fatalf("events %v, want 6 refused sign-ins and one success", eventTypes(got))
		}
		if d := got[0].details(t); d["error_code"] != "ACCOUNT_LOCKED" {
			t.Errorf("the refusal while locked: %v", d)
		}
		if d := got[1].details(t); d["locked_until"] == nil || d["failed_logins"] != float64(5) {
			t.Errorf("the failure that locked the address: %v", d)
		}
	})
}

// Ensure platform administrators see and revoke any account's sessions,
// and that to anyone else the routes do not exist.
func TestAdminUserSessions(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		alice := env.Register(t, "Alice")
		a, b := loginFrom(t, env, alice, firefoxUA), loginFrom(t, env, alice, curlUA)
		path := "/api/admin/users/" + alice.ID + "/sessions"

		list := listSessions(t, env, path, root.AccessToken)
		if len(list) != 2 || list[0].Device != "curl" || list[1].Device != "Firefox on Linux" || list[0].Current || list[1].Current {
			t.Fatalf("Alice's sessions seen by an administrator: %+v", list)
		}
		for _, token := range []string{a.AccessToken, "", "not-a-token"} {
			env.Get(t, path, token).Expect(t, http.StatusNotFound, "NOT_FOUND")
			env.Do(t, del(path, token)).Expect(t, http.StatusNotFound, "NOT_FOUND")
		}
		if works(t, env, a) != http.StatusOK {
			t.Fatal("a refused administration request ended a session")
		}
		unknown := "/api/admin/users/00000000-0000-4000-8000-000000000000/sessions"
		env.Get(t, unknown, root.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Do(t, del(unknown, root.AccessToken)).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Get(t, "/api/admin/users/not-a-uuid/sessions", root.AccessToken).Expect(t, http.StatusBadRequest, "")

		if n := revokedCount(t, env.Do(t, del(path, root.AccessToken))); n != 2 {
			t.Fatalf("revoked %d sessions, want 2", n)
		}
		for _, u := range []*apptest.User{a, b} {
			env.Get(t, "/api/users/me", u.AccessToken).Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
		}
		if works(t, env, root) != http.StatusOK || len(listSessions(t, env, path, root.AccessToken)) != 0 {
			t.Fatal("after revoking Alice's sessions")
		}

		// Alice is told, without who did it.
		again := loginFrom(t, env, alice, firefoxUA)
		events := securityEvents(t, env, again.AccessToken, "").Events
		if len(events) < 2 || events[1].Type != "admin.user.sessions.revoke" || events[1].details(t)["revoked_sessions"] != float64(2) {
			t.Fatalf("Alice's events: %v", eventTypes(events))
		}
		if _, ok := events[1].details(t)["administrator_id"]; ok {
			t.Errorf("an administrator's revocation names them: %s", events[1].Details)
		}
	})
}
