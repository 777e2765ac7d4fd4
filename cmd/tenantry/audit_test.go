package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/audit/audittest"
	"github.com/tenantry/tenantry/config"
)

func TestAuditVerify(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		environ := apptest.Environ(t, shape)
		cfg, err := config.Parse(environ)
		if err != nil {
			t.Fatal(err)
		}
		env := apptest.Start(t, cfg)

		// Before anything happened, the platform chain is reported empty.
		code, out := runCLI(t, environ, "audit", "verify")
		if code != 0 || strings.TrimSpace(out) != "platform: intact, 0 entries" {
			t.Fatalf("audit verify on an empty trail (%d):\n%s", code, out)
		}

		admin := env.SignUp(t, "Admin")
		member := env.SignUp(t, "Member")
		tenants := make([]string, 2)
		for i := range tenants {
			tenants[i] = env.CreateTenant(t, admin, fmt.Sprintf("Audited %d", i))
			env.AddMember(t, admin, tenants[i], member, "user")
			for _, role := range []string{"viewer", "user", "viewer"} {
				env.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenants[i] + "/users/" + member.ID,
					Token: admin.AccessToken, Body: map[string]string{"role": role}}).Expect(t, http.StatusOK, "")
			}
		}
		platform, err := env.App.Audit.Verify(t.Context(), audit.PlatformChain)
		if err != nil {
			t.Fatal(err)
		}

		code, out = runCLI(t, environ, "audit", "verify")
		for _, want := range []string{
			fmt.Sprintf("platform: intact, %d entries\n", platform.Entries),
			fmt.Sprintf("tenant %s: intact, 5 entries\n", tenants[0]),
			fmt.Sprintf("tenant %s: intact, 5 entries\n", tenants[1]),
		} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("audit verify (%d) lacks %q:\n%s", code, want, out)
			}
		}
		if !strings.HasPrefix(out, "platform: ") {
			t.Fatalf("the platform chain is not reported first:\n%s", out)
		}

		// Editing one entry of the first tenant breaks its chain alone.
		entries, _, err := env.App.Audit.List(t.Context(), tenants[0], audit.Filter{PerPage: 5})
		if err != nil {
			t.Fatal(err)
		}
		edited := entries[2] // seq 3
		audittest.Tamper(t, env.App.Engines.Control, tenants[0], `UPDATE audit_log SET action = 'tenant.delete' WHERE chain = $1 AND seq = 3`, tenants[0])
		code, out = runCLI(t, environ, "audit", "verify")
		if code == 0 || !strings.Contains(out, fmt.Sprintf("tenant %s: BROKEN at seq 3 (%s): ", tenants[0], edited.ID)) ||
			!strings.Contains(out, fmt.Sprintf("tenant %s: intact, 5 entries", tenants[1])) ||
			!strings.Contains(out, "1 of 3 audit chains are broken") {
			t.Fatalf("audit verify after an edit (%d):\n%s", code, out)
		}

		code, out = runCLI(t, environ, "audit", "verify", "--tenant", strings.ToUpper(tenants[1]))
		if code != 0 || strings.TrimSpace(out) != fmt.Sprintf("tenant %s: intact, 5 entries", tenants[1]) {
			t.Fatalf("audit verify --tenant (%d):\n%s", code, out)
		}
		// Deleting the end of the second tenant's chain is found too.
		audittest.Tamper(t, env.App.Engines.Control, tenants[1], `DELETE FROM audit_log WHERE chain = $1 AND seq = 5`, tenants[1])
		code, out = runCLI(t, environ, "audit", "verify", "--tenant", tenants[1])
		if code == 0 || !strings.Contains(out, fmt.Sprintf("tenant %s: BROKEN at seq 5: ", tenants[1])) {
			t.Fatalf("audit verify --tenant after deleting the last entry (%d):\n%s", code, out)
		}
		for _, bad := range []string{"not-a-uuid", "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11"} {
			if code, out := runCLI(t, environ, "audit", "verify", "--tenant", bad); code == 0 || !strings.Contains(out, "error: ") {
				t.Fatalf("audit verify --tenant %s (%d):\n%s", bad, code, out)
			}
		}
	})
}
