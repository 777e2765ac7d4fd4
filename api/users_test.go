package api_test

import (
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

func put(path, token string, body any) apptest.Request {
	return apptest.Request{Method: http.MethodPut, Path: path, Token: token, Body: body}
}

func TestMe(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Self")

		var me userJSON
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 200, "").Data(t, &me)
		if me.ID != u.ID || me.Email != u.Email {
			t.Fatalf("me = %+v", me)
		}
		env.Get(t, "/api/users/me", "").Expect(t, 401, "UNAUTHORIZED")

		var updated userJSON
		env.Do(t, put("/api/users/me", u.AccessToken, map[string]string{"first_name": "  Grace  "})).Expect(t, 200, "").Data(t, &updated)
		if updated.FirstName != "Grace" || updated.LastName != "Tester" {
			t.Fatalf("updated = %+v", updated)
		}
		env.Do(t, put("/api/users/me", u.AccessToken, map[string]string{})).Expect(t, 400, "BAD_REQUEST")
		env.Do(t, put("/api/users/me", u.AccessToken, map[string]string{"email": "new@example.com"})).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, put("/api/users/me", u.AccessToken, map[string]string{"last_name": " "})).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, put("/api/users/me", "", map[string]string{"first_name": "X"})).Expect(t, 401, "UNAUTHORIZED")
	})
}

func TestChangePassword(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Changer")
		other := env.Login(t, &apptest.User{ID: u.ID, Email: u.Email})

		env.Do(t, put("/api/users/me/password", u.AccessToken, map[string]string{"current_password": "Wrong-pass-1", "new_password": "Brand-new-9"})).
			Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, put("/api/users/me/password", u.AccessToken, map[string]string{"current_password": apptest.Password, "new_password": "weak"})).
			Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, put("/api/users/me/password", u.AccessToken, map[string]string{"new_password": "Brand-new-9"})).
			Expect(t, 400, "VALIDATION_ERROR")

		var out struct {
			RevokedSessions int `json:"revoked_sessions"`
		}
		env.Do(t, put("/api/users/me/password", u.AccessToken, map[string]string{"current_password": apptest.Password, "new_password": "Brand-new-9"})).
			Expect(t, 200, "").Data(t, &out)
		if out.RevokedSessions != 1 {
			t.Fatalf("revoked_sessions = %d, want 1", out.RevokedSessions)
		}
		// The wrong attempt before it is forgotten.
		if _, found := env.LoginFailures(t, u.Email); found {
			t.Fatal("a password change left the failures on record")
		}
		// This session goes on, the other one is over.
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 200, "")
		env.Get(t, "/api/users/me", other.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: other.RefreshToken}).Expect(t, 401, "TOKEN_REVOKED")

		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": apptest.Password})).Expect(t, 401, "INVALID_CREDENTIALS")
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "Brand-new-9"})).Expect(t, 200, "")
	})
}

// Ensure wrong current passwords count towards the lockout of the caller's
// email, and that the lock holds for password changes and logins alike.
func TestWrongCurrentPasswordsLockTheAccount(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Guesser")
		wrong := map[string]string{"current_password": "Wrong-pass-1", "new_password": "Brand-new-9"}
		for range 5 {
			env.Do(t, put("/api/users/me/password", u.AccessToken, wrong)).Expect(t, 400, "VALIDATION_ERROR")
		}
		if n := failedLogins(t, env, u.Email); n != 5 {
			t.Fatalf("failures on record = %d, want 5", n)
		}
		env.Do(t, put("/api/users/me/password", u.AccessToken, map[string]string{"current_password": apptest.Password, "new_password": "Brand-new-9"})).
			Expect(t, 423, "ACCOUNT_LOCKED")
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": apptest.Password})).Expect(t, 423, "ACCOUNT_LOCKED")
	})
}

func TestMyTenants(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		owner := env.SignUp(t, "Owner")
		member := env.SignUp(t, "Member")
		first := env.CreateTenant(t, owner, "First")
		second := env.CreateTenant(t, owner, "Second")
		env.CreateTenant(t, member, "Elsewhere")
		env.AddMember(t, owner, first, member, "viewer")
		env.AddMember(t, owner, second, member, "user")

		var list []tenantJSON
		env.Get(t, "/api/users/me/tenants", member.AccessToken).Expect(t, 200, "").Data(t, &list)
		if len(list) != 3 {
			t.Fatalf("member sees %d tenants, want 3", len(list))
		}
		// Most recently joined first.
		if list[0].ID != second || list[0].Role != "user" || list[1].ID != first || list[1].Role != "viewer" || list[2].Role != "admin" {
			t.Fatalf("list = %+v", list)
		}
		if list[0].JoinedAt == "" {
			t.Fatal("joined_at missing")
		}
	})
}
