package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

type roleJSON struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	BuiltIn     bool     `json:"built_in"`
	Members     int      `json:"members"`
}

// Custom roles grant exactly their permissions; what would widen anyone's
// rights beyond the granter's is refused.
func TestCustomRoles(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		owner, manager, member := env.SignUp(t, "Owner"), env.SignUp(t, "Manager"), env.SignUp(t, "Member")
		tenantID := env.CreateTenant(t, owner, "Roles")
		roles := "/api/tenants/" + tenantID + "/roles"
		create := func(u *apptest.User, body map[string]any) *apptest.Response {
			return env.Do(t, apptest.Request{Method: http.MethodPost, Path: roles, Token: u.AccessToken, Body: body})
		}

		// A member manager who may not delete documents.
		create(owner, map[string]any{"name": "member-manager", "description": "Runs the team",
			"permissions": []string{"tenant:read", "members:read", "members:add", "members:update", "roles:read", "roles:manage", "documents:read"}}).
			Expect(t, http.StatusCreated, "")
		env.AddMember(t, owner, tenantID, manager, "member-manager")

		// Escalation: a role with a permission the manager lacks, by
		// creating one, widening one, or giving a built-in one.
		create(manager, map[string]any{"name": "deleter", "permissions": []string{"documents:delete"}}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		create(manager, map[string]any{"name": "reader", "permissions": []string{"documents:read"}}).Expect(t, http.StatusCreated, "")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: roles + "/reader", Token: manager.AccessToken,
			Body: map[string]any{"permissions": []string{"documents:read", "files:delete"}}}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: manager.AccessToken,
			Body: map[string]any{"user_id": member.ID, "role": "admin"}}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		// Nor can the manager change the owner, whose role grants more.
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/users/" + owner.ID, Token: manager.AccessToken,
			Body: map[string]any{"role": "viewer"}}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		// Built-in roles are read-only.
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: roles + "/admin", Token: owner.AccessToken,
			Body: map[string]any{"description": "mine now"}}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Do(t, apptest.Request{Method: http.MethodDelete, Path: roles + "/viewer", Token: owner.AccessToken}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		// Bad definitions.
		for _, bad := range []map[string]any{
			{"name": "admin", "permissions": []string{}},
			{"name": "Bad Name", "permissions": []string{}},
			{"name": "nope", "permissions": []string{"documents:fly"}},
			{"name": "nope", "permissions": []string{"tenant:delete:own"}},
			{"name": "nope"},
		} {
			create(owner, bad).Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")
		}
		create(owner, map[string]any{"name": "reader", "permissions": []string{}}).Expect(t, http.StatusConflict, "CONFLICT")

		// The manager adds a member with the custom role, who can read
		// documents and nothing more.
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: manager.AccessToken,
			Body: map[string]any{"user_id": member.ID, "role": "reader"}}).Expect(t, http.StatusCreated, "")
		env.Get(t, "/api/tenants/"+tenantID+"/documents", member.AccessToken).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID+"/storage", member.AccessToken).Expect(t, http.StatusForbidden, "FORBIDDEN")

		// A role of another tenant is not a role here.
		other := env.CreateTenant(t, owner, "Other")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + other + "/roles", Token: owner.AccessToken,
			Body: map[string]any{"name": "elsewhere", "permissions": []string{"documents:read"}}}).Expect(t, http.StatusCreated, "")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/users/" + member.ID, Token: owner.AccessToken,
			Body: map[string]any{"role": "elsewhere"}}).Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")

		// A role in use is deleted only with a role for its members.
		env.Do(t, apptest.Request{Method: http.MethodDelete, Path: roles + "/reader", Token: owner.AccessToken}).Expect(t, http.StatusConflict, "CONFLICT")
		env.Do(t, apptest.Request{Method: http.MethodDelete, Path: roles + "/reader?reassign_to=viewer", Token: owner.AccessToken}).Expect(t, http.StatusOK, "")
		var listed []roleJSON
		env.Get(t, roles, owner.AccessToken).Expect(t, http.StatusOK, "").Data(t, &listed)
		counts := map[string]int{}
		for _, r := range listed {
			counts[r.Name] = r.Members
		}
		if _, still := counts["reader"]; still || counts["viewer"] != 1 || counts["member-manager"] != 1 || counts["admin"] != 1 {
			t.Fatalf("roles after deleting reader: %+v", listed)
		}
	})
}

// Whoever can manage members and roles, the tenant keeps one: not by
// demotion, removal, or a change to the role that makes one.
func TestTheLastManagerStays(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		owner, lead := env.SignUp(t, "Owner"), env.SignUp(t, "Lead")
		tenantID := env.CreateTenant(t, owner, "Managed")
		roles := "/api/tenants/" + tenantID + "/roles"
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: roles, Token: owner.AccessToken,
			Body: map[string]any{"name": "lead", "permissions": []string{"tenant:read", "members:read", "members:update", "members:remove", "roles:manage", "roles:read",
				"documents:read", "documents:download", "files:read", "storage:read"}}}).
			Expect(t, http.StatusCreated, "")
		env.AddMember(t, owner, tenantID, lead, "lead")
		// The owner leaves the management to the lead.
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/users/" + owner.ID, Token: owner.AccessToken,
			Body: map[string]any{"role": "viewer"}}).Expect(t, http.StatusOK, "")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: roles + "/lead", Token: lead.AccessToken,
			Body: map[string]any{"permissions": []string{"tenant:read", "members:update", "roles:read"}}}).Expect(t, http.StatusConflict, "CONFLICT")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/users/" + lead.ID, Token: lead.AccessToken,
			Body: map[string]any{"role": "viewer"}}).Expect(t, http.StatusConflict, "CONFLICT")
		env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + tenantID + "/users/" + lead.ID, Token: lead.AccessToken}).
			Expect(t, http.StatusConflict, "CONFLICT")
		env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/users/" + lead.ID, Token: lead.AccessToken,
			Body: map[string]any{"role": "lead", "expires_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}).Expect(t, http.StatusConflict, "CONFLICT")
	})
}

// A role given until an instant is refused from that instant on, before
// any job has run, and the job then removes the membership.
func TestExpiringRoles(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.MaintenanceInterval = time.Hour
		env := apptest.Start(t, cfg)
		owner, contractor := env.SignUp(t, "Owner"), env.SignUp(t, "Contractor")
		tenantID := env.CreateTenant(t, owner, "Temporary")
		expires := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
		var added struct {
			ExpiresAt *time.Time `json:"expires_at"`
		}
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: owner.AccessToken,
			Body: map[string]any{"user_id": contractor.ID, "role": "user", "expires_at": expires.Format(time.RFC3339)}}).
			Expect(t, http.StatusCreated, "").Data(t, &added)
		if added.ExpiresAt == nil || !added.ExpiresAt.Equal(expires) {
			t.Fatalf("expires_at = %v, want %v", added.ExpiresAt, expires)
		}
		env.Get(t, "/api/tenants/"+tenantID+"/documents", contractor.AccessToken).Expect(t, http.StatusOK, "")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: owner.AccessToken,
			Body: map[string]any{"user_id": env.SignUp(t, "Late").ID, "role": "user", "expires_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}}).
			Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")

		time.Sleep(time.Until(expires.Add(time.Second)))
		env.Get(t, "/api/tenants/"+tenantID+"/documents", contractor.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Get(t, "/api/tenants/"+tenantID, contractor.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")

		// The cleanup job, whose first run may come late enough, may have
		// removed it already; either way it is gone once this returns.
		if n, err := env.App.TenantSvc.ExpireMemberships(t.Context(), time.Now()); err != nil || n > 1 {
			t.Fatalf("the expiry removed %d memberships, %v; want at most the one", n, err)
		}
		var left int
		if err := env.App.Engines.Control.QueryRow(t.Context(), `SELECT count(*) FROM memberships WHERE user_id = $1`, contractor.ID).Scan(&left); err != nil || left != 0 {
			t.Fatalf("%d memberships of the contractor left after the expiry (%v)", left, err)
		}
		var detail struct {
			Members []struct {
				ID string `json:"id"`
			} `json:"members"`
		}
		env.Get(t, "/api/tenants/"+tenantID, owner.AccessToken).Expect(t, http.StatusOK, "").Data(t, &detail)
		if len(detail.Members) != 1 {
			t.Fatalf("members after the expiry: %+v", detail.Members)
		}
	})
}
