package sso_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sso/ssotest"
)

const (
	directoryA = "6a1f0c3e-1111-4a4a-9b9b-aaaaaaaaaaaa"
	directoryB = "7b2e1d4f-2222-4b4b-8c8c-bbbbbbbbbbbb"
)

// startEntra starts tenantry with Entra's authority and Microsoft Graph at
// an Entra-shaped provider, and a tenant signing in through directory A,
// named by one of its domains.
func startEntra(t *testing.T, shape config.Shape) (*apptest.Env, *ssotest.Entra, *apptest.User, string) {
	t.Helper()
	entra := ssotest.NewEntra(t)
	entra.AddDomain("contoso.onmicrosoft.com", directoryA)
	cfg := apptest.Config(t, shape)
	cfg.SSOAzureAuthority, cfg.SSOGraphURL = entra.Authority, entra.Authority
	env := apptest.Start(t, cfg)
	admin := env.SignUp(t, "Admin")
	tenant := env.CreateTenant(t, admin, "Contoso")
	env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenant + "/sso/config", Token: admin.AccessToken, Body: map[string]any{
		"provider_tenant_id": "contoso.onmicrosoft.com", "client_id": entra.ClientID, "client_secret": entra.ClientSecret, "enable": true,
		"auto_provisioning": map[string]any{"enabled": true, "group_role_mapping": map[string]string{"g-admins": "admin", "g-staff": "user"}},
	}}).Expect(t, http.StatusCreated, "")
	return env, entra, admin, tenant
}

func TestEntraRules(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env, entra, admin, tenant := startEntra(t, shape)
		login := env.TLSURL(t) + "/api/auth/sso/azure/login/" + tenant

		var v struct {
			Valid     bool   `json:"valid"`
			Issuer    string `json:"issuer"`
			Directory string `json:"directory"`
		}
		env.Get(t, "/api/tenants/"+tenant+"/sso/config/validate", admin.AccessToken).Expect(t, http.StatusOK, "").Data(t, &v)
		if !v.Valid || v.Directory != directoryA || v.Issuer != entra.Issuer(directoryA) {
			t.Fatalf("validate = %+v", v)
		}

		// A member of the directory signs in; the identity is (tid, oid).
		entra.Queue(&ssotest.EntraUser{ObjectID: "0000aaaa-0000-4000-8000-000000000001", Email: "ada@contoso.com", GivenName: "Ada", Groups: []string{"g-staff"}})
		var l ssoLogin
		env.NewBrowser(t).Follow(t, login, nil).Expect(t, http.StatusOK, "").Data(t, &l)
		if l.role(tenant) != "user" {
			t.Fatalf("login = %+v", l)
		}
		ada := &apptest.User{ID: l.User.ID, AccessToken: l.AccessToken}
		var ids struct {
			Identities []struct {
				AzureTenantID string `json:"azure_tenant_id"`
				AzureObjectID string `json:"azure_object_id"`
				Subject       string `json:"subject"`
				HasTokens     bool   `json:"has_provider_tokens"`
			} `json:"identities"`
		}
		env.Get(t, "/api/auth/sso/identities", l.AccessToken).Expect(t, http.StatusOK, "").Data(t, &ids)
		if len(ids.Identities) != 1 || ids.Identities[0].AzureTenantID != directoryA || ids.Identities[0].AzureObjectID != "0000aaaa-0000-4000-8000-000000000001" ||
			ids.Identities[0].Subject != ids.Identities[0].AzureObjectID || !ids.Identities[0].HasTokens {
			t.Fatalf("identities = %+v", ids)
		}

		// Microsoft Graph answers user-info with the stored token.
		var info struct {
			UserInfo map[string]any `json:"user_info"`
		}
		env.Get(t, "/api/auth/sso/user-info?tenant_id="+tenant, l.AccessToken).Expect(t, http.StatusOK, "").Data(t, &info)
		if info.UserInfo["jobTitle"] != "Engineer" || info.UserInfo["mail"] != "ada@contoso.com" {
			t.Fatalf("user info = %v", info.UserInfo)
		}

		// A token of another directory, signed with the same keys, as a
		// multi-tenant application would receive: refused.
		entra.Queue(&ssotest.EntraUser{ObjectID: "0000bbbb-0000-4000-8000-000000000002", Email: "eve@fabrikam.com", IssueFrom: directoryB})
		expectRefused(t, env, tenant, env.NewBrowser(t).Follow(t, login, nil), http.StatusUnauthorized, "SSO_TOKEN_INVALID", "wrong_directory")

		// Too many groups for the token: read from Microsoft Graph, and
		// mapped as usual.
		entra.Queue(&ssotest.EntraUser{ObjectID: "0000aaaa-0000-4000-8000-000000000003", Email: "max@contoso.com", Groups: []string{"g-x", "g-admins"}, Overage: true})
		env.NewBrowser(t).Follow(t, login, nil).Expect(t, http.StatusOK, "").Data(t, &l)
		if l.role(tenant) != "admin" {
			t.Fatalf("role from Graph's groups = %q", l.role(tenant))
		}
		_, details := lastSignIn(t, env, tenant)
		if details["groups_overage_resolved"] != float64(2) {
			t.Fatalf("audit = %v", details)
		}
		// Graph down: reported, never ignored.
		entra.SetGraphFails(true)
		entra.Queue(&ssotest.EntraUser{ObjectID: "0000aaaa-0000-4000-8000-000000000003", Email: "max@contoso.com", Groups: []string{"g-admins"}, Overage: true})
		expectRefused(t, env, tenant, env.NewBrowser(t).Follow(t, login, nil), http.StatusBadGateway, "SSO_GROUPS_UNRESOLVED", "groups_unresolved")
		entra.SetGraphFails(false)

		// Signing out returns the directory's end-session URL.
		var out struct {
			LogoutURL *string `json:"logout_url"`
		}
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/logout/" + tenant, Token: ada.AccessToken}).Expect(t, http.StatusOK, "").Data(t, &out)
		if out.LogoutURL == nil || !strings.HasPrefix(*out.LogoutURL, entra.Authority+"/"+directoryA+"/oauth2/v2.0/logout?client_id=") {
			t.Fatalf("logout = %+v", out)
		}

		// Neither the client secret nor any token of the provider ever
		// reached a response or a log line.
		logs := env.Logs.String()
		for _, secret := range append(entra.Issued(), entra.ClientSecret) {
			if strings.Contains(logs, secret) {
				t.Fatalf("the log holds a secret of the provider")
			}
		}
		for _, path := range []string{"/api/auth/sso/identities", "/api/tenants/" + tenant + "/sso/config", "/api/tenants/" + tenant + "/sso/statistics",
			"/api/tenants/" + tenant + "/audit?per_page=100"} {
			token := admin.AccessToken
			if path == "/api/auth/sso/identities" {
				token = l.AccessToken
			}
			body := string(env.Get(t, path, token).Expect(t, http.StatusOK, "").Body)
			for _, secret := range append(entra.Issued(), entra.ClientSecret) {
				if strings.Contains(body, secret) {
					t.Fatalf("%s shows a secret of the provider", path)
				}
			}
		}
	})
}
