package api_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

type adminUserJSON struct {
	ID              string  `json:"id"`
	Email           string  `json:"email"`
	FirstName       string  `json:"first_name"`
	LastName        string  `json:"last_name"`
	IsActive        bool    `json:"is_active"`
	IsPlatformAdmin bool    `json:"is_platform_admin"`
	EmailVerified   bool    `json:"email_verified"`
	Locked          bool    `json:"locked"`
	LockedUntil     *string `json:"locked_until"`
	Memberships     []struct {
		TenantID     string  `json:"tenant_id"`
		TenantName   string  `json:"tenant_name"`
		TenantActive bool    `json:"tenant_active"`
		Role         string  `json:"role"`
		ExpiresAt    *string `json:"expires_at"`
	} `json:"memberships"`
	Sessions int64 `json:"sessions"`
}

type adminUserListJSON struct {
	Users      []adminUserJSON `json:"users"`
	Pagination struct {
		Page    int   `json:"page"`
		PerPage int   `json:"per_page"`
		Total   int64 `json:"total"`
		Pages   int64 `json:"pages"`
	} `json:"pagination"`
}

func adminUsers(t *testing.T, env *apptest.Env, token, query string) adminUserListJSON {
	t.Helper()
	var out adminUserListJSON
	env.Get(t, "/api/admin/users"+query, token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

func adminUserAction(t *testing.T, env *apptest.Env, token, userID, action string) adminUserJSON {
	t.Helper()
	var out adminUserJSON
	env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users/" + userID + "/" + action, Token: token}).
		Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

// adminPaths reads the platform administration operations from the served
// OpenAPI document, so that none escapes the tests that walk them.
func adminPaths(t *testing.T, env *apptest.Env) [][2]string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	res := env.Get(t, "/api/docs/openapi.json", "").Expect(t, http.StatusOK, "")
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/api/admin/") && path != "/api/admin" {
			continue
		}
		for method := range ops {
			if method != "parameters" {
				out = append(out, [2]string{strings.ToUpper(method), path})
			}
		}
	}
	return out
}

// Ensure every platform administration route answers 404 to anyone but a
// platform administrator, as an unknown path does, and changes nothing.
func TestAdminRoutesAreHiddenFromEveryoneElse(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		member := env.SignUp(t, "Member")
		tenantID := env.CreateTenant(t, member, "Own")
		routes := adminPaths(t, env)
		for _, want := range []string{"/api/admin/users/{user_id}/deactivate", "/api/admin/tenants/{tenant_id}/quotas",
			"/api/admin/stats", "/api/admin/audit"} {
			if !slices.ContainsFunc(routes, func(r [2]string) bool { return r[1] == want }) {
				t.Fatalf("%s is not among the administration routes served: %v", want, routes)
			}
		}
		fill := strings.NewReplacer("{user_id}", member.ID, "{tenant_id}", tenantID)
		for _, r := range routes {
			path := fill.Replace(r[1])
			if strings.Contains(path, "{") {
				t.Fatalf("%s %s has a parameter the test does not fill", r[0], r[1])
			}
			for _, token := range []string{member.AccessToken, "", "not-a-token"} {
				req := apptest.Request{Method: r[0], Path: path, Token: token}
				if r[0] != http.MethodGet {
					req.Body = map[string]any{"members": 0}
				}
				env.Do(t, req).Expect(t, http.StatusNotFound, "NOT_FOUND")
			}
		}
		// Nothing the routes would have done was done.
		env.Get(t, "/api/users/me", member.AccessToken).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID, member.AccessToken).Expect(t, http.StatusOK, "")
		env.AddMember(t, member, tenantID, env.Register(t, "Second"), "user")
	})
}

// Ensure the accounts listing searches, filters and pages.
func TestAdminUsersListing(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		var listed []*apptest.User
		for range 3 {
			listed = append(listed, env.Register(t, "Listme"))
		}
		env.Register(t, "Other")
		all := adminUsers(t, env, root.AccessToken, "?per_page=100")
		if all.Pagination.Total != 5 || len(all.Users) != 5 {
			t.Fatalf("every account: %+v", all)
		}
		if u := all.Users[4]; u.Email != "root@example.com" || !u.IsPlatformAdmin || !u.IsActive || u.Locked {
			t.Fatalf("oldest account, the administrator: %+v", u)
		}

		found := adminUsers(t, env, root.AccessToken, "?search=LISTME")
		if found.Pagination.Total != 3 || len(found.Users) != 3 || found.Users[0].ID != listed[2].ID {
			t.Fatalf("search by name, newest first: %+v", found)
		}
		if got := adminUsers(t, env, root.AccessToken, "?search="+url.QueryEscape(listed[1].Email)); got.Pagination.Total != 1 ||
			got.Users[0].ID != listed[1].ID {
			t.Fatalf("search by email: %+v", got)
		}
		// The last name every test account has, and a wildcard taken literally.
		if got := adminUsers(t, env, root.AccessToken, "?search=tESTER"); got.Pagination.Total != 4 {
			t.Fatalf("search by last name: %d", got.Pagination.Total)
		}
		if got := adminUsers(t, env, root.AccessToken, "?search=%25"); got.Pagination.Total != 0 {
			t.Fatalf("%% matched %d accounts", got.Pagination.Total)
		}

		page := adminUsers(t, env, root.AccessToken, "?search=listme&per_page=2&page=2")
		if p := page.Pagination; p.Total != 3 || p.Pages != 2 || p.Page != 2 || len(page.Users) != 1 || page.Users[0].ID != listed[0].ID {
			t.Fatalf("page 2 of 2: %+v", page)
		}

		adminUserAction(t, env, root.AccessToken, listed[1].ID, "deactivate")
		inactive := adminUsers(t, env, root.AccessToken, "?search=listme&is_active=false")
		if inactive.Pagination.Total != 1 || inactive.Users[0].ID != listed[1].ID || inactive.Users[0].IsActive {
			t.Fatalf("deactivated accounts: %+v", inactive)
		}
		if got := adminUsers(t, env, root.AccessToken, "?search=listme&is_active=true"); got.Pagination.Total != 2 {
			t.Fatalf("active accounts: %+v", got)
		}

		for _, q := range []string{"is_active=maybe", "page=0", "per_page=101", "search=" + url.QueryEscape("a\x01b")} {
			env.Get(t, "/api/admin/users?"+q, root.AccessToken).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		}
	})
}

// Ensure administrators create accounts validated as registrations are.
func TestAdminCreateUser(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		body := map[string]any{"email": " Grace@Example.com ", "first_name": "Grace", "last_name": "Hopper", "password": apptest.Password}
		var u adminUserJSON
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users", Token: root.AccessToken, Body: body}).
			Expect(t, http.StatusCreated, "").Data(t, &u)
		if u.Email != "grace@example.com" || !u.IsActive || u.IsPlatformAdmin || u.EmailVerified || len(u.Memberships) != 0 {
			t.Fatalf("created: %+v", u)
		}
		if len(env.Deliveries(t, "grace@example.com", "verify_email")) != 1 {
			t.Fatal("no verification mail for the account created")
		}
		grace := env.Login(t, &apptest.User{Email: "grace@example.com"})
		env.Get(t, "/api/admin/stats", grace.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")

		body["email"] = "GRACE@example.com"
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users", Token: root.AccessToken, Body: body}).
			Expect(t, http.StatusConflict, "CONFLICT")
		for _, bad := range []map[string]any{
			{"email": "not-an-address", "first_name": "A", "last_name": "B", "password": apptest.Password},
			{"email": "a@example.com", "first_name": " ", "last_name": "B", "password": apptest.Password},
			{"email": "a@example.com", "first_name": "A", "last_name": "B", "password": "short1"},
			{"email": "a@example.com", "first_name": "A", "last_name": "B", "password": "no digits here"},
			{"email": "a@example.com", "first_name": "A", "last_name": "B"},
		} {
			res := env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users", Token: root.AccessToken, Body: bad})
			if res.Status != http.StatusBadRequest {
				t.Fatalf("%v: %d %s", bad, res.Status, res.Body)
			}
		}

		var admin adminUserJSON
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users", Token: root.AccessToken, Body: map[string]any{
			"email": "ops@example.com", "first_name": "Ops", "last_name": "Admin", "password": apptest.Password, "is_platform_admin": true,
		}}).Expect(t, http.StatusCreated, "").Data(t, &admin)
		if !admin.IsPlatformAdmin || !admin.EmailVerified {
			t.Fatalf("platform administrator created: %+v", admin)
		}
		ops := env.Login(t, &apptest.User{Email: "ops@example.com"})
		env.Get(t, "/api/admin/stats", ops.AccessToken).Expect(t, http.StatusOK, "")

		created := adminAudit(t, env, root.AccessToken, "?action=admin.user.create")
		if created.Pagination.Total != 8 {
			t.Fatalf("%d admin.user.create entries, want 8 (2 created, a conflict, 5 refused)", created.Pagination.Total)
		}
		if e := created.Entries[0]; deref(e.TargetID) != admin.ID || e.actor() != root.ID || e.Outcome != "success" {
			t.Fatalf("newest creation entry: %+v", e)
		}
	})
}

// Ensure deactivation signs the account out at once and keeps it out until
// it is activated, and that an account's detail shows its memberships.
func TestAdminDeactivateUser(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, root, member, tenantID := adminEnv(t, shape, "Workshop")

		var detail adminUserJSON
		env.Get(t, "/api/admin/users/"+strings.ToUpper(member.ID), root.AccessToken).Expect(t, http.StatusOK, "").Data(t, &detail)
		if detail.ID != member.ID || detail.Sessions != 1 || len(detail.Memberships) != 1 ||
			detail.Memberships[0].TenantID != tenantID || detail.Memberships[0].Role != "admin" || detail.Memberships[0].TenantName != "Workshop" ||
			!detail.Memberships[0].TenantActive || detail.Memberships[0].ExpiresAt != nil {
			t.Fatalf("detail: %+v", detail)
		}
		env.Get(t, "/api/admin/users/00000000-0000-4000-8000-000000000000", root.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Get(t, "/api/admin/users/not-a-uuid", root.AccessToken).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users/00000000-0000-4000-8000-000000000000/deactivate",
			Token: root.AccessToken}).Expect(t, http.StatusNotFound, "NOT_FOUND")

		got := adminUserAction(t, env, root.AccessToken, member.ID, "deactivate")
		if got.IsActive || got.Sessions != 0 {
			t.Fatalf("deactivated: %+v", got)
		}
		env.Get(t, "/api/users/me", member.AccessToken).Expect(t, http.StatusUnauthorized, "")
		env.Do(t, post("/api/auth/refresh", map[string]string{"refresh_token": member.RefreshToken})).Expect(t, http.StatusUnauthorized, "")
		if res := env.Do(t, post("/api/auth/login", map[string]string{"email": member.Email, "password": apptest.Password})); res.Status == http.StatusOK {
			t.Fatal("a deactivated account signed in")
		}
		if again := adminUserAction(t, env, root.AccessToken, member.ID, "deactivate"); again.IsActive {
			t.Fatalf("deactivated twice: %+v", again)
		}
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/users/" + root.ID + "/deactivate", Token: root.AccessToken}).
			Expect(t, http.StatusConflict, "CONFLICT")
		env.Get(t, "/api/admin/stats", root.AccessToken).Expect(t, http.StatusOK, "")

		if got = adminUserAction(t, env, root.AccessToken, member.ID, "activate"); !got.IsActive {
			t.Fatalf("activated: %+v", got)
		}
		env.Login(t, member)
		env.Get(t, "/api/tenants/"+tenantID, member.AccessToken).Expect(t, http.StatusOK, "")
		adminUserAction(t, env, root.AccessToken, member.ID, "activate")

		for action, n := range map[string]int64{"admin.user.deactivate": 4, "admin.user.activate": 2} {
			entries := adminAudit(t, env, root.AccessToken, "?action="+action)
			if entries.Pagination.Total != n {
				t.Errorf("%d %s entries, want %d", entries.Pagination.Total, action, n)
			}
		}
		chainsIntact(t, env, root, member, tenantID)
	})
}

// Ensure an administrator lifts a lockout, after which the right password
// is let in at once.
func TestAdminUnlockUser(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		u := env.Register(t, "Locked")
		for range 5 {
			env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "Wrong-pass-1"})).Expect(t, http.StatusUnauthorized, "")
		}
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": apptest.Password})).Expect(t, http.StatusLocked, "ACCOUNT_LOCKED")
		var detail adminUserJSON
		env.Get(t, "/api/admin/users/"+u.ID, root.AccessToken).Expect(t, http.StatusOK, "").Data(t, &detail)
		if !detail.Locked || detail.LockedUntil == nil {
			t.Fatalf("locked out: %+v", detail)
		}
		if got := adminUsers(t, env, root.AccessToken, "?search=locked"); got.Pagination.Total != 1 || !got.Users[0].Locked {
			t.Fatalf("listed: %+v", got)
		}

		if got := adminUserAction(t, env, root.AccessToken, u.ID, "unlock"); got.Locked || got.LockedUntil != nil {
			t.Fatalf("unlocked: %+v", got)
		}
		env.Login(t, u)
		adminUserAction(t, env, root.AccessToken, u.ID, "unlock")
		unlocks := adminAudit(t, env, root.AccessToken, "?action=admin.user.unlock")
		if unlocks.Pagination.Total != 2 || deref(unlocks.Entries[1].TargetID) != u.ID || !strings.Contains(string(unlocks.Entries[1].Details), "locked_until") {
			t.Fatalf("unlock entries: %+v", unlocks.Entries)
		}
	})
}
