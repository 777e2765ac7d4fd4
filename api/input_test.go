package api_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// inputFixture is a tenant with a document, its file and a second member,
// the targets the bad-input tables aim at.
type inputFixture struct {
	env      *apptest.Env
	owner    *apptest.User
	member   *apptest.User
	tenantID string
	doc      *apptest.Document
}

func newInputFixture(t *testing.T, shape config.Shape) *inputFixture {
	t.Helper()
	env := apptest.StartShape(t, shape)
	owner := env.SignUp(t, "Owner")
	member := env.SignUp(t, "Member")
	tenantID := env.CreateTenant(t, owner, "Inputs")
	env.AddMember(t, owner, tenantID, member, "user")
	doc := env.Upload(t, owner, tenantID, "report.pdf", []byte("%PDF-1.7 inputs"))
	return &inputFixture{env: env, owner: owner, member: member, tenantID: tenantID, doc: doc}
}

// idSpellings are spellings of a valid id that UUID parsers accept but
// tenantry does not: only the canonical 8-4-4-4-12 hex form names a
// resource.
func idSpellings(id string) map[string]string {
	return map[string]string{
		"urn":        "urn:uuid:" + id,
		"braces":     url.PathEscape("{" + id + "}"),
		"no hyphens": strings.ReplaceAll(id, "-", ""),
		"too short":  id[:35],
		"not hex":    id[:35] + "g",
	}
}

// Ensure ids in paths are accepted only in canonical form, in either case,
// and that any other spelling is a bad request rather than a server error
// or an answer that differs between engines.
func TestPathIDsMustBeCanonical(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := newInputFixture(t, shape)
		tid, did, fid, uid := f.tenantID, f.doc.ID, f.doc.FileID, f.member.ID
		routes := []struct {
			method string
			path   func(tid, did, fid, uid string) string
			body   any
		}{
			{"GET", func(t, _, _, _ string) string { return "/api/tenants/" + t }, nil},
			{"PUT", func(t, _, _, _ string) string { return "/api/tenants/" + t }, map[string]string{"name": "Renamed"}},
			{"GET", func(t, _, _, _ string) string { return "/api/tenants/" + t + "/documents" }, nil},
			{"GET", func(t, _, _, _ string) string { return "/api/tenants/" + t + "/storage" }, nil},
			{"GET", func(t, _, _, _ string) string { return "/api/tenants/" + t + "/audit" }, nil},
			{"GET", func(t, _, _, _ string) string { return "/api/tenants/" + t + "/events" }, nil},
			{"GET", func(t, d, _, _ string) string { return "/api/tenants/" + t + "/documents/" + d }, nil},
			{"GET", func(t, d, _, _ string) string { return "/api/tenants/" + t + "/documents/" + d + "/download" }, nil},
			{"GET", func(t, d, _, _ string) string { return "/api/tenants/" + t + "/documents/" + d + "/download-url" }, nil},
			{"GET", func(t, _, f, _ string) string { return "/api/tenants/" + t + "/files/" + f }, nil},
			{"GET", func(t, _, f, _ string) string { return "/api/files/" + t + "/files/" + f }, nil},
			{"PUT", func(t, _, _, u string) string { return "/api/tenants/" + t + "/users/" + u }, map[string]string{"role": "viewer"}},
		}
		for _, r := range routes {
			// Upper case is the same id.
			upper := r.path(strings.ToUpper(tid), strings.ToUpper(did), strings.ToUpper(fid), strings.ToUpper(uid))
			if res := f.env.Do(t, apptest.Request{Method: r.method, Path: upper, Token: f.owner.AccessToken, Body: r.body}); res.Status != http.StatusOK {
				t.Errorf("%s %s = %d, want 200\n%s", r.method, upper, res.Status, res.Body)
			}
			// Each other spelling of each id is refused.
			for _, target := range []string{"tenant", "document", "file", "user"} {
				for name, bad := range idSpellings(map[string]string{"tenant": tid, "document": did, "file": fid, "user": uid}[target]) {
					ids := map[string]string{"tenant": tid, "document": did, "file": fid, "user": uid}
					ids[target] = bad
					path := r.path(ids["tenant"], ids["document"], ids["file"], ids["user"])
					if path == r.path(tid, did, fid, uid) {
						continue // the route does not name this id
					}
					res := f.env.Do(t, apptest.Request{Method: r.method, Path: path, Token: f.owner.AccessToken, Body: r.body})
					if res.Status != http.StatusBadRequest || res.ErrorCode(t) != "BAD_REQUEST" {
						t.Errorf("%s %s (%s %s) = %d, want 400 BAD_REQUEST\n%s", r.method, path, target, name, res.Status, res.Body)
					}
				}
			}
		}
		// The tenant read through an upper-case id is reported in the
		// canonical lower case.
		var got tenantJSON
		f.env.Get(t, "/api/tenants/"+strings.ToUpper(tid), f.owner.AccessToken).Expect(t, 200, "").Data(t, &got)
		if got.ID != tid {
			t.Fatalf("id = %q, want %q", got.ID, tid)
		}
		// Removing a member is the last route: it changes what the
		// others need.
		for _, bad := range idSpellings(uid) {
			f.env.Do(t, del("/api/tenants/"+tid+"/users/"+bad, f.owner.AccessToken)).Expect(t, 400, "BAD_REQUEST")
		}
		f.env.Do(t, del("/api/tenants/"+tid+"/users/"+strings.ToUpper(uid), f.owner.AccessToken)).Expect(t, 200, "")
	})
}

// Ensure ids in query parameters and request bodies follow the same rule:
// canonical form in either case, stored in lower case; anything else is a
// bad request (parameters) or a validation error naming the field (bodies).
func TestQueryAndBodyIDsMustBeCanonical(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := newInputFixture(t, shape)
		audit := "/api/tenants/" + f.tenantID + "/audit?actor="
		for name, bad := range idSpellings(f.owner.ID) {
			if res := f.env.Get(t, audit+bad, f.owner.AccessToken); res.Status != 400 || res.ErrorCode(t) != "BAD_REQUEST" {
				t.Errorf("actor spelt %s = %d, want 400 BAD_REQUEST\n%s", name, res.Status, res.Body)
			}
		}
		var entries auditListJSON
		f.env.Get(t, audit+strings.ToUpper(f.owner.ID), f.owner.AccessToken).Expect(t, 200, "").Data(t, &entries)
		if len(entries.Entries) == 0 {
			t.Fatal("an upper-case actor id finds nothing")
		}

		newcomer := f.env.SignUp(t, "Newcomer")
		members := "/api/tenants/" + f.tenantID + "/users"
		for name, bad := range idSpellings(newcomer.ID) {
			res := f.env.Do(t, apptest.Request{Method: "POST", Path: members, Token: f.owner.AccessToken,
				Body: map[string]string{"user_id": strings.ReplaceAll(bad, "%7B", "{"), "role": "user"}})
			if res.Status != 400 || res.ErrorCode(t) != "VALIDATION_ERROR" || !strings.Contains(string(res.Body), `"user_id"`) {
				t.Errorf("user_id spelt %s = %d, want 400 VALIDATION_ERROR naming user_id\n%s", name, res.Status, res.Body)
			}
		}
		var m membershipJSON
		f.env.Do(t, apptest.Request{Method: "POST", Path: members, Token: f.owner.AccessToken,
			Body: map[string]string{"user_id": strings.ToUpper(newcomer.ID), "role": "user"}}).Expect(t, 201, "").Data(t, &m)
		if m.UserID != newcomer.ID {
			t.Fatalf("user_id = %q, want %q", m.UserID, newcomer.ID)
		}
	})
}

// Ensure page numbers are bounded: the largest documented page is an empty
// page, one more is a bad request, and no page overflows the offset.
func TestPageIsBounded(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := newInputFixture(t, shape)
		base := "/api/tenants/" + f.tenantID
		for _, path := range []string{base + "/documents", base + "/files", base + "/audit", "/api/files/" + f.tenantID + "/files"} {
			var page struct {
				Pagination struct {
					Page int `json:"page"`
				} `json:"pagination"`
			}
			f.env.Get(t, path+"?page="+strconv.Itoa(maxPage), f.owner.AccessToken).Expect(t, 200, "").Data(t, &page)
			if page.Pagination.Page != maxPage {
				t.Errorf("%s: page = %d, want %d", path, page.Pagination.Page, maxPage)
			}
			for _, bad := range []string{strconv.Itoa(maxPage + 1), "9223372036854775807", "9223372036854775808", "-9223372036854775808", "0"} {
				if res := f.env.Get(t, path+"?page="+bad, f.owner.AccessToken); res.Status != 400 || res.ErrorCode(t) != "BAD_REQUEST" {
					t.Errorf("%s?page=%s = %d, want 400 BAD_REQUEST\n%s", path, bad, res.Status, res.Body)
				}
			}
		}
	})
}

// maxPage is the largest page number the API documents.
const maxPage = 1000000

// Ensure control characters (U+0000 to U+001F and U+007F) in names,
// emails, filenames, MIME types and search or filter parameters are
// refused with a 400, never stored nor passed to a database that fails on
// them.
func TestControlCharactersAreRefused(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := newInputFixture(t, shape)
		tok := f.owner.AccessToken
		docPath := "/api/tenants/" + f.tenantID + "/documents/" + f.doc.ID
		for _, c := range []string{"\x00", "\x01", "\t", "\n", "\x1f", "\x7f"} {
			bodies := []struct {
				method, path string
				body         map[string]string
				field        string
			}{
				{"POST", "/api/auth/register", map[string]string{"first_name": "A" + c, "last_name": "B", "email": "ctl@example.com", "password": apptest.Password}, "first_name"},
				{"POST", "/api/auth/register", map[string]string{"first_name": "A", "last_name": c + "B", "email": "ctl@example.com", "password": apptest.Password}, "last_name"},
				{"POST", "/api/auth/register", map[string]string{"first_name": "A", "last_name": "B", "email": "ctl" + c + "@example.com", "password": apptest.Password}, "email"},
				{"POST", "/api/auth/login", map[string]string{"email": f.owner.Email + c, "password": apptest.Password}, "email"},
				{"PUT", "/api/users/me", map[string]string{"first_name": "A" + c}, "first_name"},
				{"PUT", "/api/users/me", map[string]string{"last_name": "B" + c}, "last_name"},
				{"POST", "/api/tenants", map[string]string{"name": "Acme" + c + "Corp"}, "name"},
				{"PUT", "/api/tenants/" + f.tenantID, map[string]string{"name": "Acme" + c}, "name"},
				{"PUT", docPath, map[string]string{"filename": "a" + c + ".txt"}, "filename"},
				{"PUT", docPath, map[string]string{"mime_type": "text/plain" + c}, "mime_type"},
			}
			for _, b := range bodies {
				res := f.env.Do(t, apptest.Request{Method: b.method, Path: b.path, Token: tok, Body: b.body})
				if res.Status != 400 || res.ErrorCode(t) != "VALIDATION_ERROR" || !strings.Contains(string(res.Body), `"`+b.field+`"`) {
					t.Errorf("%s %s with %q in %s = %d, want 400 VALIDATION_ERROR naming %s\n%s", b.method, b.path, c, b.field, res.Status, b.field, res.Body)
				}
			}
			params := []string{
				"/api/tenants/" + f.tenantID + "/documents?filename=" + url.QueryEscape("rep"+c),
				"/api/tenants/" + f.tenantID + "/audit?action=" + url.QueryEscape("auth.login"+c),
				"/api/tenants/" + f.tenantID + "/events?after=" + url.QueryEscape(c),
			}
			for _, p := range params {
				if res := f.env.Get(t, p, tok); res.Status != 400 || res.ErrorCode(t) != "BAD_REQUEST" {
					t.Errorf("GET %s = %d, want 400 BAD_REQUEST\n%s", p, res.Status, res.Body)
				}
			}
			for _, field := range []string{"filename", "mime_type"} {
				res := f.env.UploadParts(t, tok, f.tenantID,
					apptest.Part{Name: "file", Filename: "ok.txt", ContentType: "text/plain", Body: []byte("x")},
					apptest.Part{Name: field, Body: []byte("text" + c + "/plain")})
				if res.Status != 400 || res.ErrorCode(t) != "VALIDATION_ERROR" {
					t.Errorf("upload with %q in %s = %d, want 400 VALIDATION_ERROR\n%s", c, field, res.Status, res.Body)
				}
			}
		}
		// Nothing was renamed along the way.
		var got tenantJSON
		f.env.Get(t, "/api/tenants/"+f.tenantID, tok).Expect(t, 200, "").Data(t, &got)
		if got.Name != "Inputs" {
			t.Fatalf("tenant name = %q", got.Name)
		}
	})
}
