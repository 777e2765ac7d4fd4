package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/audit/audittest"
	"github.com/tenantry/tenantry/config"
)

type auditEntryJSON struct {
	ID         string          `json:"id"`
	Chain      string          `json:"chain"`
	Seq        int64           `json:"seq"`
	OccurredAt string          `json:"occurred_at"`
	ActorID    *string         `json:"actor_id"`
	Action     string          `json:"action"`
	TargetType *string         `json:"target_type"`
	TargetID   *string         `json:"target_id"`
	Outcome    string          `json:"outcome"`
	ClientIP   string          `json:"client_ip"`
	UserAgent  string          `json:"user_agent"`
	RequestID  string          `json:"request_id"`
	Details    json.RawMessage `json:"details"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

func (e auditEntryJSON) actor() string  { return deref(e.ActorID) }
func (e auditEntryJSON) target() string { return deref(e.TargetType) + ":" + deref(e.TargetID) }

func (e auditEntryJSON) details(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Details, &m); err != nil || m == nil {
		t.Fatalf("details of %s are not an object: %s", e.Action, e.Details)
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type auditListJSON struct {
	Entries    []auditEntryJSON `json:"entries"`
	Pagination struct {
		Page    int   `json:"page"`
		PerPage int   `json:"per_page"`
		Total   int64 `json:"total"`
		Pages   int64 `json:"pages"`
	} `json:"pagination"`
}

type verificationJSON struct {
	Chain       string `json:"chain"`
	Entries     int64  `json:"entries"`
	Intact      bool   `json:"intact"`
	FirstBroken *struct {
		Seq    int64   `json:"seq"`
		ID     *string `json:"id"`
		Reason string  `json:"reason"`
	} `json:"first_broken"`
}

// tenantAudit lists a tenant's audit entries, newest first.
func tenantAudit(t *testing.T, env *apptest.Env, token, tenantID, query string) auditListJSON {
	t.Helper()
	var out auditListJSON
	env.Get(t, "/api/tenants/"+tenantID+"/audit"+query, token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

func verifyAudit(t *testing.T, env *apptest.Env, token, tenantID string) verificationJSON {
	t.Helper()
	var out verificationJSON
	env.Get(t, "/api/tenants/"+tenantID+"/audit/verify", token).Expect(t, http.StatusOK, "").Data(t, &out)
	return out
}

// platformAudit returns the platform chain's entries, oldest first, in the
// API's form.
func platformAudit(t *testing.T, env *apptest.Env) []auditEntryJSON {
	t.Helper()
	list, _, err := env.App.Audit.List(t.Context(), audit.PlatformChain, audit.Filter{PerPage: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]auditEntryJSON, len(list))
	for i, e := range list {
		out[len(list)-1-i] = auditEntryJSON{
			ID: e.ID, Chain: e.Chain, Seq: e.Seq, ActorID: &e.ActorID, Action: e.Action, TargetType: &e.TargetType,
			TargetID: &e.TargetID, Outcome: e.Outcome, ClientIP: e.ClientIP, UserAgent: e.UserAgent,
			RequestID: e.RequestID, Details: e.Details,
		}
	}
	return out
}

// oldestFirst reverses a listing.
func oldestFirst(entries []auditEntryJSON) []auditEntryJSON {
	out := make([]auditEntryJSON, len(entries))
	for i, e := range entries {
		out[len(entries)-1-i] = e
	}
	return out
}

func withHeaders(r apptest.Request, requestID string) apptest.Request {
	r.Header = http.Header{"X-Request-Id": {requestID}, "User-Agent": {"audit-test/1.0"}}
	return r
}

// Ensure a session of ordinary use leaves the expected entries, each in the
// right chain, with who, what, on what, the outcome and where from.
func TestAuditScenario(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.Register(t, "Admin")
		env.Do(t, withHeaders(post("/api/auth/login", map[string]string{"email": admin.Email, "password": "Wrong-password-1"}), "bad-login")).
			Expect(t, http.StatusUnauthorized, "INVALID_CREDENTIALS")
		env.Do(t, post("/api/auth/login", map[string]string{"email": "nobody@example.com", "password": "Wrong-password-1"})).
			Expect(t, http.StatusUnauthorized, "INVALID_CREDENTIALS")
		env.Login(t, admin)
		bob := env.SignUp(t, "Bob")
		stranger := env.SignUp(t, "Stranger")

		tenantID := env.CreateTenant(t, admin, "Acme")
		users := "/api/tenants/" + tenantID + "/users"
		env.AddMember(t, admin, tenantID, bob, "user")
		env.Do(t, put(users+"/"+bob.ID, admin.AccessToken, map[string]string{"role": "viewer"})).Expect(t, http.StatusOK, "")
		env.Do(t, withHeaders(put("/api/tenants/"+tenantID, admin.AccessToken, map[string]string{"name": "Acme Renamed"}), "rename-1")).
			Expect(t, http.StatusOK, "")
		doc := env.Upload(t, admin, tenantID, "report.pdf", []byte("%PDF-1.4 audit"))
		env.Do(t, del("/api/tenants/"+tenantID+"/documents/"+doc.ID, admin.AccessToken)).Expect(t, http.StatusOK, "")
		// A viewer is refused within the tenant; a stranger is refused
		// without learning of the tenant, and leaves no trace in it.
		env.Do(t, put("/api/tenants/"+tenantID, bob.AccessToken, map[string]string{"name": "Mine"})).Expect(t, http.StatusForbidden, "FORBIDDEN")
		env.Do(t, put("/api/tenants/"+tenantID, stranger.AccessToken, map[string]string{"name": "Mine"})).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Do(t, del(users+"/"+bob.ID, stranger.AccessToken)).Expect(t, http.StatusNotFound, "NOT_FOUND")
		env.Do(t, put("/api/tenants/"+tenantID, "not-a-token", map[string]string{"name": "Mine"})).Expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
		env.Get(t, "/api/tenants/"+tenantID, admin.AccessToken).Expect(t, http.StatusOK, "") // reads are not recorded
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/logout", Token: admin.AccessToken}).Expect(t, http.StatusOK, "")

		tenantLog := tenantAudit(t, env, mustLogin(t, env, admin), tenantID, "?per_page=100")
		got := oldestFirst(tenantLog.Entries)
		// Where the path does not name the target, the service may.
		type want struct {
			actor, action string
			targets       []string
			outcome       string
		}
		onTenant := "tenant:" + tenantID
		wants := []want{
			{admin.ID, "tenant.create", []string{onTenant}, "success"},
			{admin.ID, "tenant.member.add", []string{onTenant, "user:" + bob.ID}, "success"},
			{admin.ID, "tenant.member.role_change", []string{"user:" + bob.ID}, "success"},
			{admin.ID, "tenant.update", []string{onTenant}, "success"},
			{admin.ID, "document.upload", []string{onTenant, "document:" + doc.ID}, "success"},
			{admin.ID, "document.delete", []string{"document:" + doc.ID}, "success"},
			{bob.ID, "tenant.update", []string{onTenant}, "denied"},
		}
		if len(got) != len(wants) || tenantLog.Pagination.Total != int64(len(wants)) {
			t.Fatalf("tenant chain has %d entries, want %d:\n%s", len(got), len(wants), describeEntries(got))
		}
		for i, w := range wants {
			e := got[i]
			if e.Chain != tenantID || e.Seq != int64(i+1) || e.actor() != w.actor || e.Action != w.action || e.Outcome != w.outcome ||
				!slices.Contains(w.targets, e.target()) || e.ClientIP != "127.0.0.1" || e.RequestID == "" || e.Hash == "" {
				t.Errorf("tenant entry %d = %+v (target %s), want %+v", i+1, e, e.target(), w)
			}
			if _, err := time.Parse(time.RFC3339Nano, e.OccurredAt); err != nil || !strings.HasSuffix(e.OccurredAt, "Z") {
				t.Errorf("occurred_at = %q", e.OccurredAt)
			}
		}
		if d := got[1].details(t); d["status"] != float64(201) {
			t.Errorf("add member details = %v", d)
		}
		rename := got[3]
		if rename.RequestID != "rename-1" || rename.UserAgent != "audit-test/1.0" {
			t.Errorf("rename entry request = %q %q", rename.RequestID, rename.UserAgent)
		}
		assertChange(t, got[2], "role", "user", "viewer")
		assertChange(t, rename, "name", "Acme", "Acme Renamed")
		if d := got[6].details(t); d["status"] != float64(403) || d["error_code"] != "FORBIDDEN" {
			t.Errorf("refused update details = %v", d)
		}

		// Everything else went into the platform chain.
		platform := platformAudit(t, env)
		find := func(action, requestID string, match func(auditEntryJSON) bool) auditEntryJSON {
			t.Helper()
			for _, e := range platform {
				if e.Action == action && (requestID == "" || e.RequestID == requestID) && (match == nil || match(e)) {
					return e
				}
			}
			t.Fatalf("no %s entry in the platform chain:\n%s", action, describeEntries(platform))
			return auditEntryJSON{}
		}
		failed := find("auth.login", "bad-login", nil)
		if d := failed.details(t); failed.Outcome != "denied" || failed.actor() != admin.ID || d["email"] != admin.Email || d["status"] != float64(401) ||
			d["error_code"] != "INVALID_CREDENTIALS" || failed.UserAgent != "audit-test/1.0" {
			t.Errorf("failed login = %+v %v", failed, d)
		}
		unknown := find("auth.login", "", func(e auditEntryJSON) bool { return strings.Contains(string(e.Details), "nobody@example.com") })
		if unknown.actor() != "" || unknown.Outcome != "denied" {
			t.Errorf("login for an unknown email = %+v", unknown)
		}
		login := find("auth.login", "", func(e auditEntryJSON) bool { return e.Outcome == "success" && e.actor() == admin.ID })
		if d := login.details(t); d["status"] != float64(200) {
			t.Errorf("login = %+v", login)
		}
		find("auth.register", "", func(e auditEntryJSON) bool { return strings.Contains(string(e.Details), bob.Email) })
		find("auth.logout", "", func(e auditEntryJSON) bool { return e.actor() == admin.ID && e.Outcome == "success" })
		probe := find("tenant.update", "", func(e auditEntryJSON) bool { return e.actor() == stranger.ID })
		if probe.Outcome != "denied" || probe.target() != "tenant:"+tenantID {
			t.Errorf("a stranger's probe = %+v", probe)
		}
		find("tenant.member.remove", "", func(e auditEntryJSON) bool { return e.actor() == stranger.ID && e.Outcome == "denied" })
		find("tenant.update", "", func(e auditEntryJSON) bool { return e.actor() == "" && e.Outcome == "denied" })
		for _, e := range platform {
			if e.Chain != audit.PlatformChain || strings.Contains(string(e.Details), apptest.Password) || strings.Contains(string(e.Details), "Wrong-password") {
				t.Fatalf("platform entry %+v", e)
			}
		}

		v := verifyAudit(t, env, mustLogin(t, env, admin), tenantID)
		if !v.Intact || v.FirstBroken != nil || v.Chain != tenantID || v.Entries != int64(len(wants)) {
			t.Fatalf("verification = %+v", v)
		}
		if pv, err := env.App.Audit.Verify(t.Context(), audit.PlatformChain); err != nil || !pv.Intact {
			t.Fatalf("platform verification = %+v %v", pv, err)
		}
	})
}

// assertChange checks an entry's before and after values of field.
func assertChange(t *testing.T, e auditEntryJSON, field string, before, after any) {
	t.Helper()
	d := e.details(t)
	b, _ := d["before"].(map[string]any)
	a, _ := d["after"].(map[string]any)
	if b[field] != before || a[field] != after {
		t.Errorf("%s details = %s, want %s from %v to %v", e.Action, e.Details, field, before, after)
	}
}

func describeEntries(entries []auditEntryJSON) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s #%d %s by %s on %s: %s %s\n", e.Chain, e.Seq, e.Action, e.actor(), e.target(), e.Outcome, e.Details)
	}
	return b.String()
}

// mustLogin opens a new session for u and returns its access token.
func mustLogin(t *testing.T, env *apptest.Env, u *apptest.User) string {
	t.Helper()
	return env.Login(t, &apptest.User{ID: u.ID, Email: u.Email}).AccessToken
}

// seedTenant creates a tenant with five audit entries.
func seedTenant(t *testing.T, env *apptest.Env, admin, member *apptest.User, name string) string {
	t.Helper()
	id := env.CreateTenant(t, admin, name)
	env.AddMember(t, admin, id, member, "user")
	for i := range 3 {
		env.Do(t, put("/api/tenants/"+id, admin.AccessToken, map[string]string{"name": fmt.Sprintf("%s %d", name, i)})).Expect(t, http.StatusOK, "")
	}
	return id
}

// Ensure /audit/verify finds an edited entry, a gap and a missing end, each
// at the entry concerned, in the database of either shape.
func TestAuditVerifyFindsTampering(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		member := env.SignUp(t, "Member")
		for _, tc := range []struct {
			name   string
			tamper string
			seq    int64
			entry  int // index, oldest first, of the entry reported; -1: none
		}{
			{"edited", `UPDATE audit_log SET action = 'tenant.delete' WHERE chain = $1 AND seq = 3`, 3, 2},
			{"deleted from the middle", `DELETE FROM audit_log WHERE chain = $1 AND seq = 3`, 4, 3},
			{"deleted last", `DELETE FROM audit_log WHERE chain = $1 AND seq = 5`, 5, -1},
		} {
			id := seedTenant(t, env, admin, member, "Tamper")
			entries := oldestFirst(tenantAudit(t, env, admin.AccessToken, id, "").Entries)
			if v := verifyAudit(t, env, admin.AccessToken, id); !v.Intact || v.Entries != 5 || len(entries) != 5 {
				t.Fatalf("%s: before tampering: %+v, %d entries", tc.name, v, len(entries))
			}
			audittest.Tamper(t, env.App.Engines.Control, id, tc.tamper, id)
			v := verifyAudit(t, env, admin.AccessToken, id)
			if v.Intact || v.FirstBroken == nil || v.FirstBroken.Seq != tc.seq || v.FirstBroken.Reason == "" {
				t.Fatalf("%s: verification = %+v", tc.name, v)
			}
			wantID := ""
			if tc.entry >= 0 {
				wantID = entries[tc.entry].ID
			}
			if deref(v.FirstBroken.ID) != wantID {
				t.Errorf("%s: first broken id = %q, want %q", tc.name, deref(v.FirstBroken.ID), wantID)
			}
		}
	})
}

// Ensure only a tenant's admins read or verify its audit trail, and bad
// query values are refused.
func TestAuditAccess(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		user := env.SignUp(t, "User")
		viewer := env.SignUp(t, "Viewer")
		stranger := env.SignUp(t, "Stranger")
		id := env.CreateTenant(t, admin, "Private")
		env.AddMember(t, admin, id, user, "user")
		env.AddMember(t, admin, id, viewer, "viewer")
		for _, path := range []string{"/api/tenants/" + id + "/audit", "/api/tenants/" + id + "/audit/verify"} {
			env.Get(t, path, admin.AccessToken).Expect(t, http.StatusOK, "")
			env.Get(t, path, user.AccessToken).Expect(t, http.StatusForbidden, "FORBIDDEN")
			env.Get(t, path, viewer.AccessToken).Expect(t, http.StatusForbidden, "FORBIDDEN")
			env.Get(t, path, stranger.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
			env.Get(t, path, "").Expect(t, http.StatusUnauthorized, "UNAUTHORIZED")
		}
		env.Get(t, "/api/tenants/0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11/audit", admin.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		for _, q := range []string{"page=0", "per_page=0", "per_page=101", "actor=not-a-uuid", "from=yesterday",
			"from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z"} {
			env.Get(t, "/api/tenants/"+id+"/audit?"+q, admin.AccessToken).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		}
	})
}

// Ensure the listing filters by actor, action and time, and pages.
func TestAuditFilters(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		other := env.SignUp(t, "Other")
		id := seedTenant(t, env, admin, other, "Filters") // create, add member, three renames
		env.Do(t, put("/api/tenants/"+id+"/users/"+other.ID, admin.AccessToken, map[string]string{"role": "admin"})).Expect(t, http.StatusOK, "")
		env.Do(t, put("/api/tenants/"+id, other.AccessToken, map[string]string{"name": "By other"})).Expect(t, http.StatusOK, "")
		env.Do(t, put("/api/tenants/"+id+"/users/"+admin.ID, other.AccessToken, map[string]string{"role": "superuser"})).Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")

		all := tenantAudit(t, env, admin.AccessToken, id, "")
		if all.Pagination.Total != 8 || len(all.Entries) != 8 || all.Entries[0].Seq != 8 {
			t.Fatalf("all = %+v", all.Pagination)
		}
		failed := all.Entries[0]
		if failed.Outcome != "failure" || failed.details(t)["error_code"] != "VALIDATION_ERROR" || failed.target() != "user:"+admin.ID {
			t.Errorf("failed role change = %+v", failed)
		}
		mid := all.Entries[3].OccurredAt // seq 5
		for _, tc := range []struct {
			query string
			seqs  string
			total int64
		}{
			{"actor=" + other.ID, "8,7", 2},
			{"actor=" + strings.ToUpper(other.ID), "8,7", 2},
			{"action=tenant.update", "7,5,4,3", 4},
			{"action=tenant.update&actor=" + admin.ID, "5,4,3", 3},
			{"from=" + url.QueryEscape(mid), "8,7,6,5", 4},
			{"to=" + url.QueryEscape(mid), "4,3,2,1", 4},
			{"per_page=3", "8,7,6", 8},
			{"per_page=3&page=3", "2,1", 8},
			{"per_page=3&page=4", "", 8},
			{"action=auth.login", "", 0},
		} {
			got := tenantAudit(t, env, admin.AccessToken, id, "?"+tc.query)
			var seqs []string
			for _, e := range got.Entries {
				seqs = append(seqs, fmt.Sprint(e.Seq))
			}
			if strings.Join(seqs, ",") != tc.seqs || got.Pagination.Total != tc.total {
				t.Errorf("%s: seqs %v of %d, want %s of %d", tc.query, seqs, got.Pagination.Total, tc.seqs, tc.total)
			}
		}
		paged := tenantAudit(t, env, admin.AccessToken, id, "?per_page=3&page=2")
		if p := paged.Pagination; p.Page != 2 || p.PerPage != 3 || p.Total != 8 || p.Pages != 3 {
			t.Errorf("pagination = %+v", p)
		}
	})
}

// Ensure a request whose audit entry cannot be written still gets its
// answer, and the failure is logged as an error.
func TestAuditFailureKeepsTheAnswer(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin := env.SignUp(t, "Admin")
		if _, err := env.App.Engines.Control.Exec(context.Background(), `DROP TABLE audit_log`); err != nil {
			t.Fatal(err)
		}
		env.CreateTenant(t, admin, "Unrecorded")
		for _, r := range env.Logs.Records(t) {
			if r["msg"] == "writing audit entry" && r["level"] == "ERROR" && r["action"] == "tenant.create" {
				return
			}
		}
		t.Fatalf("the lost audit entry was not logged:\n%s", env.Logs.String())
	})
}
