package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit/audittest"
	"github.com/tenantry/tenantry/config"
)

// signInPlatformAdmin makes a platform administrator, as `tenantry users
// create-admin` does, and signs it in.
func signInPlatformAdmin(t *testing.T, env *apptest.Env) *apptest.User {
	t.Helper()
	u, _, err := env.App.Accounts.EnsurePlatformAdmin(context.Background(), account.AdminAccount{
		Email: "root@example.com", Password: apptest.Password, FirstName: "Root", LastName: "Admin"})
	if err != nil {
		t.Fatal(err)
	}
	return env.Login(t, &apptest.User{ID: u.ID, Email: "root@example.com"})
}

func adminAudit(t *testing.T, env *apptest.Env, token, query string) auditListJSON {
	t.Helper()
	var out auditListJSON
	env.Get(t, "/api/admin/audit"+query, token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

func adminVerify(t *testing.T, env *apptest.Env, token string) verificationJSON {
	t.Helper()
	var out verificationJSON
	env.Get(t, "/api/admin/audit/verify", token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

// Ensure only platform administrators read and verify the platform's audit
// trail over the API, and that to anyone else the route does not exist.
func TestPlatformAuditAccess(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		member := env.SignUp(t, "Member")
		// A tenant admin is no platform administrator.
		env.CreateTenant(t, member, "Own")
		for _, path := range []string{"/api/admin/audit", "/api/admin/audit/verify"} {
			env.Get(t, path, root.AccessToken).Expect(t, http.StatusOK, "")
			env.Get(t, path, member.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
			env.Get(t, path, "").Expect(t, http.StatusNotFound, "NOT_FOUND")
			env.Get(t, path, "not-a-token").Expect(t, http.StatusNotFound, "NOT_FOUND")
		}
		for _, q := range []string{"page=0", "per_page=0", "per_page=101", "actor=not-a-uuid", "from=yesterday",
			"action=" + url.QueryEscape("a\x01b"), "from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z"} {
			env.Get(t, "/api/admin/audit?"+q, root.AccessToken).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		}
	})
}

// Ensure the platform listing holds the platform chain only, newest first,
// and filters and pages as a tenant's does.
func TestPlatformAuditListing(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		alice := env.SignUp(t, "Alice") // register and login
		bob := env.SignUp(t, "Bob")
		tenantID := env.CreateTenant(t, alice, "Kept apart")
		env.Do(t, put("/api/tenants/"+tenantID, alice.AccessToken, map[string]string{"name": "Renamed"})).Expect(t, http.StatusOK, "")
		// The verification mails record their sending in the chain too.
		env.WaitMailIdle(t)

		all := adminAudit(t, env, root.AccessToken, "?per_page=100")
		if all.Pagination.Total != int64(len(all.Entries)) || len(all.Entries) < 5 {
			t.Fatalf("platform listing: %d entries of %d", len(all.Entries), all.Pagination.Total)
		}
		for i, e := range all.Entries {
			if e.Chain != "platform" {
				t.Errorf("entry %s of chain %s in the platform listing", e.Action, e.Chain)
			}
			if i > 0 && e.Seq >= all.Entries[i-1].Seq {
				t.Errorf("entries not newest first: seq %d after %d", e.Seq, all.Entries[i-1].Seq)
			}
			if e.Action == "tenant.update" {
				t.Errorf("a tenant's entry in the platform listing: %+v", e)
			}
		}
		if all.Entries[0].Seq != all.Pagination.Total {
			t.Errorf("newest entry has seq %d, want %d", all.Entries[0].Seq, all.Pagination.Total)
		}

		logins := adminAudit(t, env, root.AccessToken, "?action=auth.login&actor="+strings.ToUpper(alice.ID))
		if logins.Pagination.Total != 1 || len(logins.Entries) != 1 || logins.Entries[0].actor() != alice.ID ||
			logins.Entries[0].Outcome != "success" {
			t.Errorf("Alice's logins: %+v", logins)
		}
		if got := adminAudit(t, env, root.AccessToken, "?action=auth.login&actor="+bob.ID); got.Pagination.Total != 1 {
			t.Errorf("Bob's logins: %d", got.Pagination.Total)
		}
		registrations := adminAudit(t, env, root.AccessToken, "?action=auth.register")
		if registrations.Pagination.Total != 2 || !strings.Contains(string(registrations.Entries[0].Details), bob.Email) {
			t.Errorf("registrations, newest first: %+v", registrations)
		}

		// Pages and times, against the full listing.
		n := all.Pagination.Total
		paged := adminAudit(t, env, root.AccessToken, "?per_page=2&page=2")
		if p := paged.Pagination; p.Page != 2 || p.PerPage != 2 || p.Total != n || p.Pages != (n+1)/2 ||
			len(paged.Entries) != 2 || paged.Entries[0].Seq != n-2 {
			t.Errorf("page 2 of 2: %+v, first seq %v", p, seqsOf(paged.Entries))
		}
		mid := all.Entries[2]
		from := adminAudit(t, env, root.AccessToken, "?per_page=100&from="+url.QueryEscape(mid.OccurredAt))
		to := adminAudit(t, env, root.AccessToken, "?per_page=100&to="+url.QueryEscape(mid.OccurredAt))
		if from.Pagination.Total+to.Pagination.Total != n || from.Pagination.Total < 3 {
			t.Errorf("from %s: %v; before it: %v", mid.OccurredAt, seqsOf(from.Entries), seqsOf(to.Entries))
		}
	})
}

// Ensure the platform chain's verification reports it intact, then the
// first entry edited once one is.
func TestPlatformAuditVerify(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		root := signInPlatformAdmin(t, env)
		env.SignUp(t, "Someone")
		env.WaitMailIdle(t) // its verification mail's sending is recorded too
		total := adminAudit(t, env, root.AccessToken, "").Pagination.Total
		v := adminVerify(t, env, root.AccessToken)
		if v.Chain != "platform" || !v.Intact || v.FirstBroken != nil || v.Entries != total || total < 3 {
			t.Fatalf("before tampering: %+v, %d entries listed", v, total)
		}
		second := adminAudit(t, env, root.AccessToken, fmt.Sprintf("?per_page=1&page=%d", total-1)).Entries[0]
		audittest.Tamper(t, env.App.Engines.Control, "platform",
			`UPDATE audit_log SET action = 'auth.logout' WHERE chain = 'platform' AND seq = 2`)
		v = adminVerify(t, env, root.AccessToken)
		if v.Intact || v.FirstBroken == nil || v.FirstBroken.Seq != 2 || deref(v.FirstBroken.ID) != second.ID || v.FirstBroken.Reason == "" {
			t.Fatalf("after tampering: %+v", v)
		}
	})
}

func seqsOf(entries []auditEntryJSON) []int64 {
	out := make([]int64, len(entries))
	for i, e := range entries {
		out[i] = e.Seq
	}
	return out
}
