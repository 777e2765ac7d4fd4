package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenant"
)

// Ensure tenants list shows deleted tenants with their purge date, restore
// brings one back whole, purge asks for confirmation and then removes the
// tenant for good, and each action is audited.
func TestTenantsListRestorePurge(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		environ := apptest.Environ(t, shape)
		environ["TENANTRY_TENANT_RETENTION"] = "7d"
		cfg, err := config.Parse(environ)
		if err != nil {
			t.Fatal(err)
		}
		env := apptest.Start(t, cfg)
		admin := env.SignUp(t, "Owner")
		kept := env.CreateTenant(t, admin, "Kept")
		id := env.CreateTenant(t, admin, "Doomed")
		doc := env.Upload(t, admin, id, "report.pdf", []byte("the report"))
		del := func() {
			env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + id, Token: admin.AccessToken}).Expect(t, http.StatusOK, "")
		}
		del()

		code, out := runCLI(t, environ, "tenants", "list")
		if code != 0 || !strings.Contains(out, "ID ") || !strings.Contains(out, kept) || !strings.Contains(out, id) {
			t.Fatalf("tenants list (%d):\n%s", code, out)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, kept) && !strings.Contains(line, " active ") {
				t.Errorf("the kept tenant is not listed active: %q", line)
			}
			if strings.HasPrefix(line, id) && !strings.Contains(line, " deleted ") {
				t.Errorf("the deleted tenant is not listed deleted: %q", line)
			}
		}
		code, out = runCLI(t, environ, "tenants", "list", "--deleted")
		listed, _ := env.App.Lifecycle.List(context.Background(), true)
		if code != 0 || strings.Contains(out, kept) || len(listed) != 1 ||
			!strings.Contains(out, listed[0].PurgeDue.Format("2006-01-02T15:04:05Z")) || !strings.Contains(out, "Doomed") {
			t.Fatalf("tenants list --deleted (%d), want the purge due 7 days after %v:\n%s", code, listed, out)
		}

		for _, bad := range [][]string{{"restore", "not-an-id"}, {"purge", "not-an-id", "--yes"}, {"restore"}} {
			if code, out := runCLI(t, environ, append([]string{"tenants"}, bad...)...); code == 0 {
				t.Fatalf("tenants %v (%d):\n%s", bad, code, out)
			}
		}
		if code, out := runCLI(t, environ, "tenants", "restore", strings.ToUpper(id)); code != 0 || !strings.Contains(out, "restored tenant "+id) {
			t.Fatalf("tenants restore (%d):\n%s", code, out)
		}
		res := env.Get(t, "/api/tenants/"+id+"/documents/"+doc.ID+"/download", admin.AccessToken).Expect(t, http.StatusOK, "")
		if !bytes.Equal(res.Body, []byte("the report")) {
			t.Fatalf("after the restore the document reads %q", res.Body)
		}
		if code, out := runCLI(t, environ, "tenants", "restore", id); code == 0 || !strings.Contains(out, "is not deleted") {
			t.Fatalf("tenants restore of a tenant not deleted (%d):\n%s", code, out)
		}
		if code, out := runCLI(t, environ, "tenants", "purge", id, "--yes"); code == 0 || !strings.Contains(out, "is not deleted") {
			t.Fatalf("tenants purge of a tenant not deleted (%d):\n%s", code, out)
		}

		del()
		if code, out := runCLIWithInput(t, environ, id+"\n", "tenants", "purge", id); code == 0 || !strings.Contains(out, "--yes") {
			t.Fatalf("tenants purge without a terminal or --yes (%d):\n%s", code, out)
		}
		if _, err := env.App.Lifecycle.Restore(context.Background(), id); err != nil {
			t.Fatalf("the unconfirmed purge touched the tenant: %v", err)
		}
		del()
		code, out = runCLI(t, environ, "tenants", "purge", id, "--yes")
		if code != 0 || !strings.Contains(out, "purged tenant "+id+" (Doomed)") || !strings.Contains(out, "1 documents, 1 blobs (10 bytes), 1 memberships") {
			t.Fatalf("tenants purge --yes (%d):\n%s", code, out)
		}
		env.Get(t, "/api/tenants/"+id, admin.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		if code, out := runCLI(t, environ, "tenants", "purge", id, "--yes"); code != 0 || !strings.Contains(out, "already purged") {
			t.Fatalf("tenants purge again (%d):\n%s", code, out)
		}
		if code, out := runCLI(t, environ, "tenants", "restore", id); code == 0 || !strings.Contains(out, "was purged") {
			t.Fatalf("tenants restore of a purged tenant (%d):\n%s", code, out)
		}
		code, out = runCLI(t, environ, "tenants", "list", "--deleted")
		if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, " purged ") {
			t.Fatalf("tenants list --deleted after the purge (%d):\n%s", code, out)
		}
		if code, out := runCLI(t, environ, "tenants", "list"); code != 0 || strings.Contains(out, id) {
			t.Fatalf("tenants list after the purge (%d):\n%s", code, out)
		}

		actions := map[string]int{}
		entries, _, err := env.App.Audit.List(context.Background(), audit.PlatformChain, audit.Filter{PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.TargetID == id {
				actions[e.Action]++
				if e.Action != tenant.TombstoneAction && !strings.Contains(string(e.Details), `"via":"command line"`) {
					t.Errorf("%s is not recorded as a command: %s", e.Action, e.Details)
				}
			}
		}
		if actions["tenant.restore"] != 1 || actions["tenant.purge"] != 1 || actions[tenant.TombstoneAction] != 1 {
			t.Fatalf("audited actions on the tenant: %v", actions)
		}
		if code, out := runCLI(t, environ, "audit", "verify"); code != 0 || strings.Contains(out, id) {
			t.Fatalf("audit verify after the purge (%d):\n%s", code, out)
		}
	})
}
