package api_test

import (
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

type adminTenantJSON struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	DatabaseName string  `json:"database_name"`
	IsActive     bool    `json:"is_active"`
	DeletedAt    *string `json:"deleted_at"`
	Members      int64   `json:"members"`
	Quotas       struct {
		Storage   *int64 `json:"storage"`
		Documents *int64 `json:"documents"`
		Members   *int64 `json:"members"`
	} `json:"quotas"`
	Usage struct {
		Documents     int64 `json:"documents"`
		PhysicalBytes int64 `json:"physical_bytes"`
		LogicalBytes  int64 `json:"logical_bytes"`
		Members       int64 `json:"members"`
	} `json:"usage"`
}

type adminTenantListJSON struct {
	Tenants    []adminTenantJSON `json:"tenants"`
	Pagination struct {
		Total int64 `json:"total"`
		Pages int64 `json:"pages"`
	} `json:"pagination"`
}

func adminTenants(t *testing.T, env *apptest.Env, token, query string) adminTenantListJSON {
	t.Helper()
	var out adminTenantListJSON
	env.Get(t, "/api/admin/tenants"+query, token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

func adminTenantAction(t *testing.T, env *apptest.Env, token, tenantID, action string, status int) adminTenantJSON {
	t.Helper()
	var out adminTenantJSON
	res := env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/admin/tenants/" + tenantID + "/" + action, Token: token})
	if status != http.StatusOK {
		res.Expect(t, status, "")
		return out
	}
	res.Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

// adminEnv starts a shape with a platform administrator and a tenant
// created by its owner.
func adminEnv(t *testing.T, shape config.Shape, tenantName string) (env *apptest.Env, root, owner *apptest.User, tenantID string) {
	t.Helper()
	env = apptest.StartShape(t, shape)
	root = signInPlatformAdmin(t, env)
	owner = env.SignUp(t, "Owner")
	return env, root, owner, env.CreateTenant(t, owner, tenantName)
}

// chainsIntact checks that the tenant's audit chain and the platform's
// verify.
func chainsIntact(t *testing.T, env *apptest.Env, root, owner *apptest.User, tenantID string) {
	t.Helper()
	if v := verifyAudit(t, env, owner.AccessToken, tenantID); !v.Intact || v.Entries < 1 {
		t.Fatalf("tenant chain: %+v", v)
	}
	if v := adminVerify(t, env, root.AccessToken); !v.Intact {
		t.Fatalf("platform chain: %+v", v)
	}
}

// Ensure administrators list every tenant, whoever its members, search and
// page them, and read one's quotas and usage, deleted ones included.
func TestAdminTenantsListing(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		alice, bob := env.SignUp(t, "Alice"), env.SignUp(t, "Bob")
		first := env.CreateTenant(t, alice, "Acme Blue")
		second := env.CreateTenant(t, bob, "Acme Green")
		gone := env.CreateTenant(t, bob, "Gone")
		env.AddMember(t, alice, first, bob, "user")
		content := []byte("%PDF-1.4 a small document")
		env.Upload(t, alice, first, "a.pdf", content)
		env.Do(t, del("/api/tenants/"+gone, bob.AccessToken)).Expect(t, http.StatusOK, "")

		all := adminTenants(t, env, root.AccessToken, "")
		if all.Pagination.Total != 2 || len(all.Tenants) != 2 || all.Tenants[0].ID != second || all.Tenants[1].ID != first ||
			all.Tenants[1].Members != 2 || !all.Tenants[1].IsActive || all.Tenants[1].DeletedAt != nil {
			t.Fatalf("tenants, newest first: %+v", all)
		}
		withDeleted := adminTenants(t, env, root.AccessToken, "?include_deleted=true")
		if withDeleted.Pagination.Total != 3 || withDeleted.Tenants[0].ID != gone || withDeleted.Tenants[0].DeletedAt == nil ||
			withDeleted.Tenants[0].IsActive {
			t.Fatalf("with the deleted: %+v", withDeleted)
		}
		if got := adminTenants(t, env, root.AccessToken, "?search=aCME&per_page=1&page=2"); got.Pagination.Total != 2 ||
			got.Pagination.Pages != 2 || len(got.Tenants) != 1 || got.Tenants[0].ID != first {
			t.Fatalf("search, page 2: %+v", got)
		}
		if got := adminTenants(t, env, root.AccessToken, "?search=green"); got.Pagination.Total != 1 || got.Tenants[0].ID != second {
			t.Fatalf("search: %+v", got)
		}

		var detail adminTenantJSON
		env.Get(t, "/api/admin/tenants/"+first, root.AccessToken).Expect(t, http.StatusOK, "").Data(t, &detail)
		if detail.Name != "Acme Blue" || detail.DatabaseName == "" || detail.Usage.Documents != 1 || detail.Usage.Members != 2 ||
			detail.Usage.PhysicalBytes != int64(len(content)) || detail.Quotas.Members != nil || detail.Quotas.Storage != nil {
			t.Fatalf("detail: %+v", detail)
		}
		env.Get(t, "/api/admin/tenants/"+gone, root.AccessToken).Expect(t, http.StatusOK, "").Data(t, &detail)
		if detail.DeletedAt == nil {
			t.Fatalf("deleted tenant: %+v", detail)
		}
		env.Get(t, "/api/admin/tenants/00000000-0000-4000-8000-000000000000", root.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Get(t, "/api/admin/tenants/nope", root.AccessToken).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		env.Get(t, "/api/admin/tenants?include_deleted=perhaps", root.AccessToken).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
	})
}

// Ensure a deactivated tenant is refused to its members and comes back as
// it was, a deleted one is restored, and each action lands in the tenant's
// audit chain, which stays intact as the platform's does.
func TestAdminTenantLifecycle(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, root, owner, tenantID := adminEnv(t, shape, "Kept")
		env.Upload(t, owner, tenantID, "kept.pdf", []byte("%PDF-1.4 kept"))

		if got := adminTenantAction(t, env, root.AccessToken, tenantID, "deactivate", http.StatusOK); got.IsActive || got.Usage.Documents != 1 {
			t.Fatalf("deactivated: %+v", got)
		}
		env.Get(t, "/api/tenants/"+tenantID, owner.AccessToken).Expect(t, http.StatusNotFound, "")
		env.Get(t, "/api/tenants/"+tenantID+"/documents", owner.AccessToken).Expect(t, http.StatusNotFound, "")
		adminTenantAction(t, env, root.AccessToken, tenantID, "deactivate", http.StatusOK)
		adminTenantAction(t, env, root.AccessToken, tenantID, "restore", http.StatusConflict)
		if got := adminTenantAction(t, env, root.AccessToken, tenantID, "activate", http.StatusOK); !got.IsActive {
			t.Fatalf("activated: %+v", got)
		}
		var docs struct {
			Documents []apptest.Document `json:"documents"`
		}
		env.Get(t, "/api/tenants/"+tenantID+"/documents", owner.AccessToken).Expect(t, http.StatusOK, "").Data(t, &docs)
		if len(docs.Documents) != 1 {
			t.Fatalf("documents after activation: %+v", docs)
		}

		env.Do(t, del("/api/tenants/"+tenantID, owner.AccessToken)).Expect(t, http.StatusOK, "")
		env.Get(t, "/api/tenants/"+tenantID, owner.AccessToken).Expect(t, http.StatusNotFound, "")
		adminTenantAction(t, env, root.AccessToken, tenantID, "activate", http.StatusConflict)
		adminTenantAction(t, env, root.AccessToken, tenantID, "deactivate", http.StatusConflict)
		if got := adminTenantAction(t, env, root.AccessToken, tenantID, "restore", http.StatusOK); !got.IsActive || got.DeletedAt != nil {
			t.Fatalf("restored: %+v", got)
		}
		env.Get(t, "/api/tenants/"+tenantID, owner.AccessToken).Expect(t, http.StatusOK, "")
		adminTenantAction(t, env, root.AccessToken, tenantID, "restore", http.StatusConflict)
		adminTenantAction(t, env, root.AccessToken, "00000000-0000-4000-8000-000000000000", "restore", http.StatusNotFound)
		adminTenantAction(t, env, root.AccessToken, "00000000-0000-4000-8000-000000000000", "deactivate", http.StatusNotFound)

		for action, n := range map[string]int64{"admin.tenant.deactivate": 2, "admin.tenant.activate": 1, "admin.tenant.restore": 1} {
			entries := tenantAudit(t, env, owner.AccessToken, tenantID, "?action="+action)
			if entries.Pagination.Total != n {
				t.Errorf("%d %s entries in the tenant's chain, want %d", entries.Pagination.Total, action, n)
				continue
			}
			if e := entries.Entries[0]; e.actor() != root.ID || deref(e.TargetID) != tenantID || e.Outcome != "success" {
				t.Errorf("%s entry: %+v", action, e)
			}
		}
		// Refusals are kept in the platform's chain, the tenant as target.
		refused := adminAudit(t, env, root.AccessToken, "?action=admin.tenant.restore")
		if refused.Pagination.Total < 2 {
			t.Errorf("refused restores in the platform chain: %+v", refused)
		}
		chainsIntact(t, env, root, owner, tenantID)
	})
}

// Ensure quotas set by an administrator are enforced and recorded.
func TestAdminTenantQuotas(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, root, owner, tenantID := adminEnv(t, shape, "Limited")
		path := "/api/admin/tenants/" + tenantID + "/quotas"

		var limits struct {
			Storage   *int64 `json:"storage"`
			Documents *int64 `json:"documents"`
			Members   *int64 `json:"members"`
		}
		env.Do(t, put(path, root.AccessToken, map[string]any{"members": 1, "documents": 5})).Expect(t, http.StatusOK, "").Data(t, &limits)
		if limits.Members == nil || *limits.Members != 1 || limits.Documents == nil || *limits.Documents != 5 || limits.Storage != nil {
			t.Fatalf("limits set: %+v", limits)
		}
		joiner := env.Register(t, "Joiner")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: owner.AccessToken,
			Body: map[string]string{"user_id": joiner.ID, "role": "user"}}).Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")

		for _, bad := range []map[string]any{{"members": -1}, {"storage": -5}, {"documents": "many"}} {
			if res := env.Do(t, put(path, root.AccessToken, bad)); res.Status != http.StatusBadRequest {
				t.Fatalf("%v: %d %s", bad, res.Status, res.Body)
			}
		}
		env.Do(t, put("/api/admin/tenants/00000000-0000-4000-8000-000000000000/quotas", root.AccessToken, map[string]any{})).
			Expect(t, http.StatusNotFound, "NOT_FOUND")

		// Null and absent are unlimited.
		env.Do(t, put(path, root.AccessToken, map[string]any{"members": nil})).Expect(t, http.StatusOK, "").Data(t, &limits)
		if limits.Members != nil || limits.Documents != nil || limits.Storage != nil {
			t.Fatalf("limits lifted: %+v", limits)
		}
		env.AddMember(t, owner, tenantID, joiner, "user")

		entries := tenantAudit(t, env, owner.AccessToken, tenantID, "?action=admin.tenant.quotas")
		if entries.Pagination.Total != 2 || entries.Entries[1].actor() != root.ID {
			t.Fatalf("quota entries: %+v", entries)
		}
		chainsIntact(t, env, root, owner, tenantID)
	})
}

// Ensure the platform figures match what was made.
func TestAdminStats(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		alice, bob := env.SignUp(t, "Alice"), env.SignUp(t, "Bob")
		env.Register(t, "Carol")
		kept := env.CreateTenant(t, alice, "Kept")
		paused := env.CreateTenant(t, bob, "Paused")
		gone := env.CreateTenant(t, bob, "Gone")
		env.CreateTenant(t, alice, "Also kept")
		env.Upload(t, alice, kept, "one.pdf", []byte("%PDF-1.4 one"))
		env.Upload(t, bob, paused, "two.pdf", []byte("%PDF-1.4 two!"))
		env.Upload(t, bob, gone, "three.pdf", []byte("%PDF-1.4 three"))
		adminTenantAction(t, env, root.AccessToken, paused, "deactivate", http.StatusOK)
		env.Do(t, del("/api/tenants/"+gone, bob.AccessToken)).Expect(t, http.StatusOK, "")
		adminUserAction(t, env, root.AccessToken, bob.ID, "deactivate")

		var stats struct {
			Users struct {
				Total          int64 `json:"total"`
				Active         int64 `json:"active"`
				PlatformAdmins int64 `json:"platform_admins"`
			} `json:"users"`
			Tenants struct {
				Active, Deactivated, Deleted int64
			} `json:"tenants"`
			Documents    int64 `json:"documents"`
			StorageBytes int64 `json:"storage_bytes"`
			SignUps      []struct {
				Date  string `json:"date"`
				Count int64  `json:"count"`
			} `json:"sign_ups"`
			TenantsCreated []struct {
				Date  string `json:"date"`
				Count int64  `json:"count"`
			} `json:"tenants_created"`
		}
		env.Get(t, "/api/admin/stats", root.AccessToken).Expect(t, http.StatusOK, "").Data(t, &stats)
		u, tn := stats.Users, stats.Tenants
		if u.Total != 4 || u.Active != 3 || u.PlatformAdmins != 1 {
			t.Errorf("users: %+v", u)
		}
		if tn.Active != 2 || tn.Deactivated != 1 || tn.Deleted != 1 {
			t.Errorf("tenants: %+v", tn)
		}
		if want := int64(len("%PDF-1.4 one") + len("%PDF-1.4 two!") + len("%PDF-1.4 three")); stats.Documents != 3 || stats.StorageBytes != want {
			t.Errorf("documents %d, bytes %d; want 3, %d", stats.Documents, stats.StorageBytes, want)
		}
		sum := func(days []struct {
			Date  string `json:"date"`
			Count int64  `json:"count"`
		}) (n int64) {
			for i, d := range days {
				if d.Count <= 0 || (i > 0 && d.Date <= days[i-1].Date) {
					t.Errorf("days not in order or empty: %+v", days)
				}
				n += d.Count
			}
			return n
		}
		if n := sum(stats.SignUps); n != 4 {
			t.Errorf("sign-ups per day add up to %d, want 4: %+v", n, stats.SignUps)
		}
		if n := sum(stats.TenantsCreated); n != 4 {
			t.Errorf("tenants created per day add up to %d, want 4: %+v", n, stats.TenantsCreated)
		}
	})
}
