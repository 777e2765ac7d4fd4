package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/permission"
)

// routePermission is an operation of the served OpenAPI document with the
// permission it declares.
type routePermission struct {
	id, method, path string
	perm             permission.Permission
}

// tenantRoutes reads every operation on a tenant's resources from the
// served document, and fails the test for one that declares no permission.
func tenantRoutes(t *testing.T, env *apptest.Env) []routePermission {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Permission  string `json:"x-permission"`
			Security    []any  `json:"security"`
		} `json:"paths"`
	}
	res := env.Get(t, "/api/docs/openapi.json", "").Expect(t, http.StatusOK, "")
	if err := json.Unmarshal(res.Body, &doc); err != nil {
		t.Fatal(err)
	}
	var out []routePermission
	for path, ops := range doc.Paths {
		onTenant := strings.HasPrefix(path, "/api/tenants/{tenant_id}") || strings.HasPrefix(path, "/api/files/{tenant_id}")
		for method, op := range ops {
			if op.Permission == "" {
				// Reached without a member's token: a signed link, or
				// the unauthenticated health probe of the original.
				if onTenant && len(op.Security) > 0 {
					t.Errorf("%s %s (%s) acts on a tenant but declares no permission", strings.ToUpper(method), path, op.OperationID)
				}
				continue
			}
			if !permission.Defined(permission.Permission(op.Permission)) {
				t.Errorf("%s declares %q, which is not in the catalogue", op.OperationID, op.Permission)
			}
			out = append(out, routePermission{id: op.OperationID, method: strings.ToUpper(method), path: path, perm: permission.Permission(op.Permission)})
		}
	}
	// Destructive operations last, the tenant's deletion at the very end.
	slices.SortFunc(out, func(a, b routePermission) int {
		rank := func(r routePermission) int {
			switch {
			case r.id == "delete-tenant":
				return 2
			case r.method == http.MethodDelete:
				return 1
			}
			return 0
		}
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// roleFixture is a tenant where caller has the role under test, with
// something of the owner's for every route to act on.
type roleFixture struct {
	tenantID, documentID, fileID, target, newcomer, invitationID string
	// orphans are files no document uses, one per route deleting files.
	orphans       map[string]string
	owner, caller *apptest.User
}

func newRoleFixture(t *testing.T, env *apptest.Env, role string, custom []string) *roleFixture {
	t.Helper()
	f := &roleFixture{owner: env.SignUp(t, "Owner"), caller: env.SignUp(t, "Caller")}
	f.tenantID = env.CreateTenant(t, f.owner, "Routes "+role)
	if custom != nil {
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + f.tenantID + "/roles", Token: f.owner.AccessToken,
			Body: map[string]any{"name": role, "permissions": custom}}).Expect(t, http.StatusCreated, "")
	}
	env.AddMember(t, f.owner, f.tenantID, f.caller, role)
	target := env.SignUp(t, "Target")
	env.AddMember(t, f.owner, f.tenantID, target, "viewer")
	f.target, f.newcomer = target.ID, env.SignUp(t, "Newcomer").ID
	doc := env.Upload(t, f.owner, f.tenantID, "owners.pdf", []byte("the owner's document"))
	f.documentID, f.fileID = doc.ID, doc.File.ID
	f.orphans = map[string]string{}
	for _, base := range []string{"/api/tenants/", "/api/files/"} {
		orphan := env.Upload(t, f.owner, f.tenantID, "orphan.pdf", []byte("soon without a document, for "+base))
		env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + f.tenantID + "/documents/" + orphan.ID, Token: f.owner.AccessToken}).
			Expect(t, http.StatusOK, "")
		f.orphans[base] = orphan.File.ID
	}
	env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + f.tenantID + "/roles", Token: f.owner.AccessToken,
		Body: map[string]any{"name": "spare", "permissions": []string{"documents:read"}}}).Expect(t, http.StatusCreated, "")
	var inv struct {
		ID string `json:"id"`
	}
	env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + f.tenantID + "/invitations", Token: f.owner.AccessToken,
		Body: map[string]any{"email": "invited." + role + "@example.com", "role": "viewer"}}).Expect(t, http.StatusCreated, "").Data(t, &inv)
	f.invitationID = inv.ID
	return f
}

// request builds a valid call of the route on the fixture: a refusal can
// then only come from authorization.
func (f *roleFixture) request(t *testing.T, r routePermission) apptest.Request {
	t.Helper()
	fileID := f.fileID
	if r.method == http.MethodDelete {
		fileID = f.orphans["/api/tenants/"]
		if strings.HasPrefix(r.path, "/api/files/") {
			fileID = f.orphans["/api/files/"]
		}
	}
	path := strings.NewReplacer("{tenant_id}", f.tenantID, "{document_id}", f.documentID, "{file_id}", fileID,
		"{user_id}", f.target, "{name}", "spare", "{domain}", "example.com", "{invitation_id}", f.invitationID).Replace(r.path)
	req := apptest.Request{Method: r.method, Path: path, Token: f.caller.AccessToken}
	switch r.id {
	case "update-tenant":
		req.Body = map[string]any{"name": "Renamed"}
	case "add-tenant-member":
		req.Body = map[string]any{"user_id": f.newcomer, "role": "viewer"}
	case "change-tenant-member-role":
		req.Body = map[string]any{"role": "viewer"}
	case "update-document":
		req.Body = map[string]any{"filename": "renamed.pdf"}
	case "upload-document":
		req.Body, req.ContentType = apptest.Multipart(t, apptest.Part{Name: "file", Filename: "new.pdf", ContentType: "application/pdf", Body: []byte("new")})
	case "create-role":
		req.Body = map[string]any{"name": "made", "permissions": []string{"documents:read"}}
	case "update-role":
		req.Body = map[string]any{"description": "changed"}
	case "create-sso-config":
		req.Body = map[string]any{"provider_type": "oidc", "issuer": "https://idp.example.com", "client_id": "tenantry", "client_secret": "s3cret"}
	case "update-sso-config":
		req.Body = map[string]any{"client_id": "tenantry-2"}
	case "enable-sso-config":
		req.Body = map[string]any{"auth_method": "both"}
	case "set-sso-auto-provisioning":
		req.Body = map[string]any{"enabled": true, "default_role": "viewer"}
	case "create-invitation":
		req.Body = map[string]any{"email": "another@example.com", "role": "viewer"}
	case "update-timestamping":
		req.Body = map[string]any{"enabled": false}
	case "bulk-timestamp-files":
		req.Body = map[string]any{"file_ids": []string{f.fileID}}
	case "claim-tenant-domain":
		req.Body = map[string]any{"domain": "example.com"}
	}
	return req
}

// Every route on a tenant's resources, read from the served document, for
// each built-in role and a custom one: a role granting the route's
// permission gets past authorization, any other gets 403. An ownable
// permission granted for one's own resources only does not reach the
// owner's document.
func TestEveryRouteByRole(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		routes := tenantRoutes(t, env)
		if len(routes) < 20 {
			t.Fatalf("only %d routes declare a permission", len(routes))
		}
		custom := []string{"tenant:read", "documents:read", "documents:update:own", "audit:read", "roles:read", "files:read"}
		for _, role := range []string{permission.Admin, permission.User, permission.Viewer, "auditor"} {
			t.Run(role, func(t *testing.T) {
				var set permission.Set
				var grants []string
				if role == "auditor" {
					grants = custom
					set, _ = permission.Parse(custom)
				} else {
					set, _ = permission.BuiltIn(role)
				}
				f := newRoleFixture(t, env, role, grants)
				for _, r := range routes {
					res := env.Do(t, f.request(t, r))
					allowed := set.AllowsAll(r.perm)
					switch {
					case allowed && (res.Status == http.StatusForbidden || (res.Status == http.StatusNotFound && strings.Contains(string(res.Body), "Tenant not found"))):
						t.Errorf("%s, granting %s, got %d from %s %s: %s", role, r.perm, res.Status, r.method, r.path, res.Body)
					case !allowed && res.Status != http.StatusForbidden:
						t.Errorf("%s, not granting %s on the owner's resources, got %d from %s %s, want 403", role, r.perm, res.Status, r.method, r.path)
					}
				}
			})
		}
	})
}

// The permission catalogue and a member's effective permissions, as user
// interfaces read them.
func TestEffectivePermissions(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		owner, viewer, stranger := env.SignUp(t, "Owner"), env.SignUp(t, "Viewer"), env.SignUp(t, "Stranger")
		tenantID := env.CreateTenant(t, owner, "Effective")
		env.AddMember(t, owner, tenantID, viewer, "viewer")
		var catalogue []struct {
			Permission string `json:"permission"`
			Ownable    bool   `json:"ownable"`
		}
		env.Get(t, "/api/permissions", viewer.AccessToken).Expect(t, http.StatusOK, "").Data(t, &catalogue)
		if len(catalogue) != len(permission.Catalogue) {
			t.Fatalf("the catalogue lists %d permissions, want %d", len(catalogue), len(permission.Catalogue))
		}
		var mine struct {
			Role        string   `json:"role"`
			Permissions []string `json:"permissions"`
		}
		env.Get(t, "/api/tenants/"+tenantID+"/permissions", viewer.AccessToken).Expect(t, http.StatusOK, "").Data(t, &mine)
		want, _ := permission.BuiltIn(permission.Viewer)
		if mine.Role != "viewer" || fmt.Sprint(mine.Permissions) != fmt.Sprint(want.Strings()) {
			t.Fatalf("a viewer's permissions: %+v", mine)
		}
		env.Get(t, "/api/tenants/"+tenantID+"/permissions", stranger.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
	})
}
