package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenantdb"
)

type tenantJSON struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	DatabaseName string  `json:"database_name"`
	IsActive     bool    `json:"is_active"`
	CreatedBy    *string `json:"created_by"`
	Role         string  `json:"role"`
	JoinedAt     string  `json:"joined_at"`
	Members      []struct {
		ID    string `json:"id"`
		Email string `json:"email"`
		Role  string `json:"role"`
	} `json:"members"`
}

type membershipJSON struct {
	UserID   string `json:"user_id"`
	TenantID string `json:"tenant_id"`
	Role     string `json:"role"`
	JoinedAt string `json:"joined_at"`
}

func del(path, token string) apptest.Request {
	return apptest.Request{Method: http.MethodDelete, Path: path, Token: token}
}

var databaseName = regexp.MustCompile(`^tenant_[a-z0-9_]+_[0-9a-f]{8}$`)

func TestCreateAndListTenants(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		owner := env.SignUp(t, "Owner")
		stranger := env.SignUp(t, "Stranger")

		var got tenantJSON
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/tenants", Token: owner.AccessToken, Body: map[string]string{"name": "  Acme Corporation "}}).
			Expect(t, 201, "").Data(t, &got)
		if got.Name != "Acme Corporation" || got.Role != "admin" || !got.IsActive || !databaseName.MatchString(got.DatabaseName) ||
			!strings.HasPrefix(got.DatabaseName, "tenant_acme_corporation_") || got.CreatedBy == nil || *got.CreatedBy != owner.ID {
			t.Fatalf("created = %+v", got)
		}
		// The database exists and is at the latest schema.
		lease, err := env.App.Tenants.Acquire(t.Context(), tenantdb.Ref{Name: got.DatabaseName})
		if err != nil {
			t.Fatal(err)
		}
		var docs int
		err = lease.DB().QueryRow(t.Context(), "SELECT value FROM counters WHERE name = 'documents'").Scan(&docs)
		lease.Release()
		if err != nil {
			t.Fatalf("the tenant database is not migrated: %v", err)
		}

		for _, bad := range []any{map[string]string{"name": ""}, map[string]string{"name": "   "}, map[string]string{"name": strings.Repeat("n", 256)}, map[string]any{"name": "x", "is_active": false}} {
			env.Do(t, apptest.Request{Method: "POST", Path: "/api/tenants", Token: owner.AccessToken, Body: bad}).Expect(t, 400, "VALIDATION_ERROR")
		}
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/tenants", Body: map[string]string{"name": "x"}}).Expect(t, 401, "UNAUTHORIZED")

		var list []tenantJSON
		env.Get(t, "/api/tenants", owner.AccessToken).Expect(t, 200, "").Data(t, &list)
		if len(list) != 1 || list[0].ID != got.ID || list[0].Role != "admin" {
			t.Fatalf("owner's list = %+v", list)
		}
		env.Get(t, "/api/tenants", stranger.AccessToken).Expect(t, 200, "").Data(t, &list)
		if len(list) != 0 {
			t.Fatalf("a stranger sees %+v", list)
		}
	})
}

func TestTenantIsolationAndRoles(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		user := env.SignUp(t, "User")
		viewer := env.SignUp(t, "Viewer")
		stranger := env.SignUp(t, "Stranger")
		id := env.CreateTenant(t, admin, "Roles")
		env.AddMember(t, admin, id, user, "user")
		env.AddMember(t, admin, id, viewer, "viewer")
		path := "/api/tenants/" + id

		var detail tenantJSON
		env.Get(t, path, viewer.AccessToken).Expect(t, 200, "").Data(t, &detail)
		if detail.Role != "viewer" || len(detail.Members) != 3 || detail.Members[0].ID != admin.ID || detail.Members[0].Role != "admin" {
			t.Fatalf("detail = %+v", detail)
		}
		env.Get(t, path, user.AccessToken).Expect(t, 200, "")

		// A stranger cannot tell the tenant exists.
		strangerRes := env.Get(t, path, stranger.AccessToken).Expect(t, 404, "NOT_FOUND")
		missingRes := env.Get(t, "/api/tenants/0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", stranger.AccessToken).Expect(t, 404, "NOT_FOUND")
		if string(strangerRes.Body) != string(missingRes.Body) {
			t.Fatalf("a foreign tenant answers differently from a missing one:\n%s\n%s", strangerRes.Body, missingRes.Body)
		}
		env.Get(t, "/api/tenants/not-a-uuid", admin.AccessToken).Expect(t, 400, "BAD_REQUEST")
		env.Get(t, "/api/tenants/"+strings.ToUpper(id), admin.AccessToken).Expect(t, 200, "")

		for _, who := range []*apptest.User{user, viewer} {
			env.Do(t, put(path, who.AccessToken, map[string]string{"name": "Mine"})).Expect(t, 403, "FORBIDDEN")
			env.Do(t, del(path, who.AccessToken)).Expect(t, 403, "FORBIDDEN")
			env.Do(t, apptest.Request{Method: "POST", Path: path + "/users", Token: who.AccessToken, Body: map[string]string{"user_id": stranger.ID, "role": "admin"}}).Expect(t, 403, "FORBIDDEN")
			env.Do(t, put(path+"/users/"+who.ID, who.AccessToken, map[string]string{"role": "admin"})).Expect(t, 403, "FORBIDDEN")
			env.Do(t, del(path+"/users/"+admin.ID, who.AccessToken)).Expect(t, 403, "FORBIDDEN")
		}
		env.Do(t, put(path, stranger.AccessToken, map[string]string{"name": "Mine"})).Expect(t, 404, "NOT_FOUND")
		env.Do(t, del(path, stranger.AccessToken)).Expect(t, 404, "NOT_FOUND")
		env.Do(t, apptest.Request{Method: "POST", Path: path + "/users", Token: stranger.AccessToken, Body: map[string]string{"user_id": stranger.ID, "role": "admin"}}).Expect(t, 404, "NOT_FOUND")
	})
}

func TestUpdateAndDeleteTenant(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		id := env.CreateTenant(t, admin, "Before")
		path := "/api/tenants/" + id

		var got tenantJSON
		env.Do(t, put(path, admin.AccessToken, map[string]string{"name": " After "})).Expect(t, 200, "").Data(t, &got)
		if got.Name != "After" {
			t.Fatalf("renamed = %+v", got)
		}
		env.Get(t, path, admin.AccessToken).Expect(t, 200, "").Data(t, &got)
		if got.Name != "After" {
			t.Fatal("the rename did not persist")
		}
		env.Do(t, put(path, admin.AccessToken, map[string]string{})).Expect(t, 400, "BAD_REQUEST")
		env.Do(t, put(path, admin.AccessToken, map[string]string{"name": ""})).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, put(path, admin.AccessToken, map[string]string{"database_name": "x"})).Expect(t, 400, "VALIDATION_ERROR")

		env.Do(t, del(path, admin.AccessToken)).Expect(t, 200, "")
		env.Get(t, path, admin.AccessToken).Expect(t, 404, "NOT_FOUND")
		env.Do(t, del(path, admin.AccessToken)).Expect(t, 404, "NOT_FOUND")
		var list []tenantJSON
		env.Get(t, "/api/tenants", admin.AccessToken).Expect(t, 200, "").Data(t, &list)
		if len(list) != 0 {
			t.Fatalf("a deleted tenant is listed: %+v", list)
		}

		// is_active false in an update deactivates too.
		other := env.CreateTenant(t, admin, "Other")
		env.Do(t, put("/api/tenants/"+other, admin.AccessToken, map[string]any{"is_active": false})).Expect(t, 200, "").Data(t, &got)
		if got.IsActive {
			t.Fatal("is_active false was ignored")
		}
		env.Get(t, "/api/tenants/"+other, admin.AccessToken).Expect(t, 404, "NOT_FOUND")
	})
}

func TestMembers(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		bob := env.SignUp(t, "Bob")
		gone := env.SignUp(t, "Gone")
		id := env.CreateTenant(t, admin, "Team")
		users := "/api/tenants/" + id + "/users"

		var m membershipJSON
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": bob.ID, "role": "user"}}).
			Expect(t, 201, "").Data(t, &m)
		if m.UserID != bob.ID || m.TenantID != id || m.Role != "user" || m.JoinedAt == "" {
			t.Fatalf("membership = %+v", m)
		}
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": bob.ID, "role": "viewer"}}).Expect(t, 409, "CONFLICT")
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", "role": "user"}}).Expect(t, 404, "NOT_FOUND")
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": "not-a-uuid", "role": "user"}}).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": gone.ID, "role": "owner"}}).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": gone.ID}}).Expect(t, 400, "VALIDATION_ERROR")
		if _, err := env.App.Accounts.SetActive(t.Context(), gone.Email, false); err != nil {
			t.Fatal(err)
		}
		env.Do(t, apptest.Request{Method: "POST", Path: users, Token: admin.AccessToken, Body: map[string]string{"user_id": gone.ID, "role": "user"}}).Expect(t, 404, "NOT_FOUND")

		// Roles change; the last admin can be neither demoted nor removed.
		env.Do(t, put(users+"/"+bob.ID, admin.AccessToken, map[string]string{"role": "viewer"})).Expect(t, 200, "").Data(t, &m)
		if m.Role != "viewer" {
			t.Fatalf("role = %q", m.Role)
		}
		env.Do(t, put(users+"/"+bob.ID, admin.AccessToken, map[string]string{"role": "superuser"})).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, put(users+"/"+gone.ID, admin.AccessToken, map[string]string{"role": "user"})).Expect(t, 404, "NOT_FOUND")
		env.Do(t, put(users+"/"+admin.ID, admin.AccessToken, map[string]string{"role": "user"})).Expect(t, 409, "CONFLICT")
		env.Do(t, del(users+"/"+admin.ID, admin.AccessToken)).Expect(t, 409, "CONFLICT")
		env.Do(t, del(users+"/"+gone.ID, admin.AccessToken)).Expect(t, 404, "NOT_FOUND")
		env.Do(t, del(users+"/bad-id", admin.AccessToken)).Expect(t, 400, "BAD_REQUEST")

		// With a second admin, the first may leave.
		env.Do(t, put(users+"/"+bob.ID, admin.AccessToken, map[string]string{"role": "admin"})).Expect(t, 200, "")
		env.Do(t, del(users+"/"+admin.ID, admin.AccessToken)).Expect(t, 200, "")
		env.Get(t, "/api/tenants/"+id, admin.AccessToken).Expect(t, 404, "NOT_FOUND")
		env.Get(t, "/api/tenants/"+id, bob.AccessToken).Expect(t, 200, "")
		env.Do(t, del(users+"/"+bob.ID, bob.AccessToken)).Expect(t, 409, "CONFLICT")
	})
}

// Two admins demoting each other at the same moment must not leave the
// tenant without an admin.
func TestConcurrentDemotionsKeepAnAdmin(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		for round := range 5 {
			a := env.SignUp(t, "A")
			b := env.SignUp(t, "B")
			id := env.CreateTenant(t, a, "Pair")
			env.AddMember(t, a, id, b, "admin")
			users := "/api/tenants/" + id + "/users/"
			var wg sync.WaitGroup
			statuses := make([]int, 2)
			wg.Go(func() {
				statuses[0] = env.Do(t, put(users+b.ID, a.AccessToken, map[string]string{"role": "viewer"})).Status
			})
			wg.Go(func() {
				statuses[1] = env.Do(t, put(users+a.ID, b.AccessToken, map[string]string{"role": "viewer"})).Status
			})
			wg.Wait()
			var detail tenantJSON
			viewer := a
			if statuses[0] != 200 {
				viewer = b
			}
			env.Get(t, "/api/tenants/"+id, viewer.AccessToken).Expect(t, 200, "").Data(t, &detail)
			admins := 0
			for _, m := range detail.Members {
				if m.Role == "admin" {
					admins++
				}
			}
			if admins != 1 {
				t.Fatalf("round %d: statuses %v left %d admins", round, statuses, admins)
			}
		}
	})
}
