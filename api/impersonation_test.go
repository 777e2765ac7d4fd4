package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

type impersonationJSON struct {
	AccessToken  string  `json:"access_token"`
	RefreshToken *string `json:"refresh_token"`
	ExpiresIn    int     `json:"expires_in"`
	SessionID    string  `json:"session_id"`
	User         struct {
		ID string `json:"id"`
	} `json:"user"`
}

func impersonate(t *testing.T, env *apptest.Env, adminToken, userID, reason string) impersonationJSON {
	t.Helper()
	var out impersonationJSON
	env.Post(t, "/api/admin/impersonate", adminToken, map[string]string{"user_id": userID, "reason": reason}).
		Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

// Ensure an administrator acting as a user gets a short-lived token naming
// them as actor, sees what the user sees, and leaves every request on record
// under both people; and that the acting ends when asked, for good.
func TestImpersonation(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		alice := env.SignUp(t, "Alice")
		tenantID := env.CreateTenant(t, alice, "Alice's")

		imp := impersonate(t, env, root.AccessToken, alice.ID, "Reproduce a refused upload")
		if imp.User.ID != alice.ID || imp.RefreshToken != nil || imp.ExpiresIn <= 0 || imp.ExpiresIn > 900 {
			t.Fatalf("impersonation = %+v", imp)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(imp.AccessToken, ".")[1])
		if !strings.Contains(string(payload), `"act":{"sub":"`+root.ID+`"}`) || !strings.Contains(string(payload), `"sub":"`+alice.ID+`"`) {
			t.Fatalf("claims %s do not name the administrator acting as the user", payload)
		}

		var me struct {
			ID string `json:"id"`
		}
		env.Get(t, "/api/users/me", imp.AccessToken).Expect(t, http.StatusOK, "").Data(t, &me)
		if me.ID != alice.ID {
			t.Fatalf("acting as %s, /me is %s", alice.ID, me.ID)
		}
		// Alice sees the administrator's session among hers.
		if !slices.ContainsFunc(mySessions(t, env, alice.AccessToken), func(s sessionJSON) bool {
			return s.ID == imp.SessionID && s.AuthMethod == "impersonation"
		}) {
			t.Errorf("the impersonation is not among the user's sessions: %+v", mySessions(t, env, alice.AccessToken))
		}
		env.Get(t, "/api/tenants/"+tenantID+"/documents", imp.AccessToken).Expect(t, http.StatusOK, "")
		env.Do(t, put("/api/tenants/"+tenantID, imp.AccessToken, map[string]string{"name": "Renamed while acting"})).Expect(t, http.StatusOK, "")

		// The read and the change are in the tenant's chain, by Alice, with
		// the administrator named.
		entries := tenantAudit(t, env, alice.AccessToken, tenantID, "?per_page=100").Entries
		var read, change bool
		for _, e := range entries {
			if e.details(t)["impersonator_id"] != root.ID {
				continue
			}
			if e.actor() != alice.ID {
				t.Errorf("entry %s names the administrator but its actor is %s", e.Action, e.actor())
			}
			read = read || e.Action == "list-documents"
			change = change || e.Action == "tenant.update"
		}
		if !read || !change {
			t.Fatalf("read recorded %v, change recorded %v, in %s", read, change, describeEntries(entries))
		}

		env.Post(t, "/api/auth/end-impersonation", alice.AccessToken, nil).Expect(t, http.StatusBadRequest, "")
		env.Post(t, "/api/auth/end-impersonation", imp.AccessToken, nil).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/users/me", imp.AccessToken).Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
		env.Get(t, "/api/users/me", alice.AccessToken).Expect(t, http.StatusOK, "")

		// Both ends are in the platform chain, with the user as target,
		// and both chains still verify.
		var started, ended bool
		for _, e := range platformAudit(t, env) {
			switch e.Action {
			case "admin.impersonate":
				started = e.actor() == root.ID && e.target() == "user:"+alice.ID && e.details(t)["reason"] == "Reproduce a refused upload"
			case "auth.end_impersonation":
				if e.Outcome == "success" {
					ended = e.actor() == alice.ID && e.target() == "user:"+alice.ID && e.details(t)["impersonator_id"] == root.ID
				}
			}
		}
		if !started || !ended {
			t.Errorf("platform chain: start recorded %v, end recorded %v", started, ended)
		}
		if v := adminVerify(t, env, root.AccessToken); !v.Intact {
			t.Errorf("platform chain broken: %+v", v)
		}
		if v := verifyAudit(t, env, alice.AccessToken, tenantID); !v.Intact {
			t.Errorf("tenant chain broken: %+v", v)
		}

		// Alice sees both in her security history, with who and why.
		var seen []string
		for _, e := range securityEvents(t, env, alice.AccessToken, "?per_page=100").Events {
			if (e.Type == "admin.impersonate" || e.Type == "auth.end_impersonation") && e.Outcome == "success" {
				var d map[string]any
				_ = json.Unmarshal(e.Details, &d)
				if d["administrator_id"] != root.ID {
					t.Errorf("%s does not name the administrator: %s", e.Type, e.Details)
				}
				seen = append(seen, e.Type+":"+e.Outcome)
			}
		}
		if !slices.Contains(seen, "admin.impersonate:success") || !slices.Contains(seen, "auth.end_impersonation:success") {
			t.Errorf("security events about the impersonation: %v", seen)
		}

		alerts := adminMail(t, env, root.AccessToken, "?kind=security_alert")
		var mailed bool
		for _, d := range alerts {
			mailed = mailed || d.To == alice.Email
		}
		if !mailed {
			t.Errorf("no security alert queued for %s: %+v", alice.Email, alerts)
		}
	})
}

// Ensure what acting as someone must never allow: climbing to another
// administrator, keeping access after the end, locking the owner out, or
// reaching platform administration.
func TestImpersonationEscalations(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		bob := env.SignUp(t, "Bob")
		tenantID := env.CreateTenant(t, bob, "Bob's")
		imp := impersonate(t, env, root.AccessToken, bob.ID, "Support request")

		// Platform administrators cannot be impersonated, nor can anyone
		// impersonate themselves or start from an impersonation.
		env.Post(t, "/api/admin/impersonate", root.AccessToken, map[string]string{"user_id": root.ID, "reason": "x"}).Expect(t, http.StatusBadRequest, "")
		if _, _, err := env.App.Accounts.EnsurePlatformAdmin(t.Context(), account.AdminAccount{
			Email: "second@example.com", Password: apptest.Password, FirstName: "Second", LastName: "Admin"}); err != nil {
			t.Fatal(err)
		}
		second := env.Login(t, &apptest.User{Email: "second@example.com"})
		env.Post(t, "/api/admin/impersonate", root.AccessToken, map[string]string{"user_id": second.ID, "reason": "Climb"}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Post(t, "/api/admin/impersonate", imp.AccessToken, map[string]string{"user_id": bob.ID, "reason": "Again"}).Expect(t, http.StatusNotFound, "NOT_FOUND")

		// No platform administration while acting.
		for _, path := range []string{"/api/admin/audit", "/api/admin/mail"} {
			env.Get(t, path, imp.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		}
		// No change to how the account signs in.
		env.Do(t, put("/api/users/me/password", imp.AccessToken, map[string]string{"current_password": apptest.Password, "new_password": "Taken-over-99"})).
			Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Do(t, del("/api/users/me/sessions", imp.AccessToken)).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Do(t, del("/api/users/me/sessions/"+imp.SessionID, imp.AccessToken)).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Post(t, "/api/auth/sso/link/"+tenantID, imp.AccessToken, map[string]string{"password": apptest.Password}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Login(t, &apptest.User{Email: bob.Email}) // the password is still Bob's

		// No refresh: the access token is not one, and none was given.
		env.Post(t, "/api/auth/refresh", "", map[string]string{"refresh_token": imp.AccessToken}).Expect(t, http.StatusUnauthorized, "")

		// Bad requests.
		for _, body := range []map[string]string{
			{"user_id": bob.ID},
			{"user_id": bob.ID, "reason": "   "},
			{"user_id": bob.ID, "reason": strings.Repeat("r", 501)},
			{"user_id": "not-an-id", "reason": "x"},
		} {
			env.Post(t, "/api/admin/impersonate", root.AccessToken, body).Expect(t, http.StatusBadRequest, "")
		}
		env.Post(t, "/api/admin/impersonate", root.AccessToken, map[string]string{"user_id": "00000000-0000-4000-8000-000000000000", "reason": "x"}).
			Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Post(t, "/api/admin/impersonate", bob.AccessToken, map[string]string{"user_id": bob.ID, "reason": "x"}).Expect(t, http.StatusNotFound, "NOT_FOUND")

		// Once the administrator is no longer one, their acting ends.
		imp2 := impersonate(t, env, second.AccessToken, bob.ID, "Second look")
		env.Get(t, "/api/users/me", imp2.AccessToken).Expect(t, http.StatusOK, "")
		if _, err := env.App.Accounts.SetActive(t.Context(), "second@example.com", false); err != nil {
			t.Fatal(err)
		}
		env.Get(t, "/api/users/me", imp2.AccessToken).Expect(t, http.StatusUnauthorized, "")

		// After the end, the token is dead however it is presented.
		env.Post(t, "/api/auth/end-impersonation", imp.AccessToken, nil).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID, imp.AccessToken).Expect(t, http.StatusUnauthorized, "")
		env.Post(t, "/api/auth/end-impersonation", imp.AccessToken, nil).Expect(t, http.StatusUnauthorized, "")
	})
}
