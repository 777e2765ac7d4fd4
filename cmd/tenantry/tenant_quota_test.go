package main

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
)

func TestTenantsSetQuota(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.Environ(t, shape)
		cfg, err := config.Parse(env)
		if err != nil {
			t.Fatal(err)
		}
		e := apptest.Start(t, cfg)
		admin := e.SignUp(t, "Admin")
		tenantID := e.CreateTenant(t, admin, "Quoted")
		storage := func() map[string]any {
			data := e.Get(t, "/api/tenants/"+tenantID+"/storage", admin.AccessToken).Expect(t, http.StatusOK, "").JSON(t)["data"]
			return data.(map[string]any)["quotas"].(map[string]any)
		}
		limit := func(q map[string]any, kind string) any { return q[kind].(map[string]any)["limit"] }
		expectOutput := func(code int, out string, want ...string) {
			t.Helper()
			if code != 0 {
				t.Fatalf("set-quota failed (%d):\n%s", code, out)
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		}

		code, out := runCLI(t, env, "tenants", "set-quota", tenantID)
		expectOutput(code, out, "storage    unlimited", "documents  unlimited", "members    unlimited")

		code, out = runCLI(t, env, "tenants", "set-quota", strings.ToUpper(tenantID), "--storage-mb", "1", "--documents", "2")
		expectOutput(code, out, "storage    1 MB", "documents  2", "members    unlimited")
		if q := storage(); limit(q, "storage") != float64(1<<20) || limit(q, "documents") != float64(2) || limit(q, "members") != nil {
			t.Fatalf("quotas served after set-quota: %v", q)
		}
		e.Upload(t, admin, tenantID, "one.txt", []byte("one"))
		e.Upload(t, admin, tenantID, "two.txt", []byte("two"))
		e.UploadParts(t, admin.AccessToken, tenantID, apptest.Part{Name: "file", Filename: "three.txt", Body: []byte("three")}).
			Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")

		code, out = runCLI(t, env, "tenants", "set-quota", tenantID, "--documents", "unlimited", "--members", "1")
		expectOutput(code, out, "storage    1 MB", "documents  unlimited", "members    1")
		e.Upload(t, admin, tenantID, "three.txt", []byte("three"))
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: admin.AccessToken,
			Body: map[string]string{"user_id": e.Register(t, "Member").ID, "role": "user"}}).Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")

		// default falls back on the configured default, here the one of
		// the environment the command runs in.
		withDefault := maps.Clone(env)
		withDefault["TENANTRY_QUOTA_MEMBERS"] = "5"
		code, out = runCLI(t, withDefault, "tenants", "set-quota", tenantID, "--members", "default", "--storage-mb", "Default")
		expectOutput(code, out, "storage    unlimited", "documents  unlimited", "members    5")
		if q := storage(); limit(q, "storage") != nil || limit(q, "members") != nil {
			t.Fatalf("quotas served after going back to the defaults: %v", q)
		}

		for _, bad := range []struct {
			args []string
			want string
		}{
			{[]string{tenantID, "--documents", "-1"}, `--documents: "-1" is neither a whole number of 0 or more, unlimited nor default`},
			{[]string{tenantID, "--members", "lots"}, `--members: "lots" is neither`},
			{[]string{tenantID, "--storage-mb", "9000000000000000"}, "--storage-mb: 9000000000000000 is too large"},
			{[]string{"not-a-tenant", "--members", "3"}, `"not-a-tenant" is not a tenant id`},
			{[]string{uuid.NewString(), "--members", "3"}, "Tenant not found"},
			{[]string{uuid.NewString()}, "not found"},
		} {
			if code, out := runCLI(t, env, append([]string{"tenants", "set-quota"}, bad.args...)...); code == 0 || !strings.Contains(out, bad.want) {
				t.Fatalf("set-quota %v (%d), want an error saying %q:\n%s", bad.args, code, bad.want, out)
			}
		}

		entries, _, err := e.App.Audit.List(context.Background(), audit.PlatformChain, audit.Filter{Page: 1, PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		var changes int
		for _, en := range entries {
			if en.Action == "tenant.set_quota" && en.TargetID == tenantID {
				changes++
			}
		}
		if changes != 3 {
			t.Fatalf("%d quota changes in the audit trail, want 3", changes)
		}
	})
}
