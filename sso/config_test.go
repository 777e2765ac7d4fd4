package sso_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sso/ssotest"
)

type configJSON struct {
	ID                  string   `json:"id"`
	ProviderType        string   `json:"provider_type"`
	ProviderTenantID    string   `json:"provider_tenant_id"`
	ClientID            string   `json:"client_id"`
	HasClientSecret     bool     `json:"has_client_secret"`
	RedirectURI         string   `json:"redirect_uri"`
	AllowedRedirectURLs []string `json:"allowed_redirect_urls"`
	IsEnabled           bool     `json:"is_enabled"`
	AuthMethod          string   `json:"auth_method"`
	AutoProvisioning    struct {
		Enabled             bool              `json:"enabled"`
		DefaultRole         string            `json:"default_role"`
		AllowedEmailDomains []string          `json:"allowed_email_domains"`
		GroupRoleMapping    map[string]string `json:"group_role_mapping"`
	} `json:"auto_provisioning"`
}

func TestConfigurationIsForTenantAdminsAndItsSecretWriteOnly(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		admin, viewer, stranger := env.SignUp(t, "Admin"), env.SignUp(t, "Viewer"), env.SignUp(t, "Stranger")
		tenant := env.CreateTenant(t, admin, "Acme")
		env.AddMember(t, admin, tenant, viewer, "viewer")
		idp := ssotest.NewProvider(t)
		base := "/api/tenants/" + tenant + "/sso/config"
		do := func(method, path string, u *apptest.User, body any) *apptest.Response {
			return env.Do(t, apptest.Request{Method: method, Path: path, Token: u.AccessToken, Body: body})
		}

		do(http.MethodGet, base, admin, nil).Expect(t, http.StatusNotFound, "NOT_FOUND")
		// Refused configurations.
		for name, body := range map[string]map[string]any{
			"plain http issuer":     {"provider_type": "oidc", "issuer": "http://idp.example.com", "client_id": "c", "client_secret": "s"},
			"multi-tenant entra":    {"provider_type": "azure_ad", "provider_tenant_id": "common", "client_id": "c", "client_secret": "s"},
			"entra without tenant":  {"client_id": "c", "client_secret": "s"},
			"missing secret":        {"provider_type": "oidc", "issuer": idp.Issuer(), "client_id": "c"},
			"unknown provider":      {"provider_type": "saml", "client_id": "c", "client_secret": "s"},
			"bad redirect":          {"provider_type": "google", "client_id": "c", "client_secret": "s", "allowed_redirect_urls": []string{"http://app.example.com/"}},
			"bad role":              {"provider_type": "google", "client_id": "c", "client_secret": "s", "auto_provisioning": map[string]any{"default_role": "owner"}},
			"suffix-matched domain": {"provider_type": "google", "client_id": "c", "client_secret": "s", "auto_provisioning": map[string]any{"allowed_email_domains": []string{"com"}}},
		} {
			res := do(http.MethodPost, base, admin, body)
			if res.Status != http.StatusBadRequest {
				t.Fatalf("%s: status %d: %s", name, res.Status, res.Body)
			}
		}

		secret := "the-client-secret-" + tenant
		idp.Mock.ClientSecret = secret
		create := map[string]any{"provider_type": "oidc", "issuer": idp.Issuer(), "client_id": idp.Mock.ClientID, "client_secret": secret,
			"allowed_redirect_urls": []string{appURL}}
		do(http.MethodPost, base, viewer, create).Expect(t, http.StatusForbidden, "FORBIDDEN")
		do(http.MethodPost, base, stranger, create).Expect(t, http.StatusNotFound, "NOT_FOUND")
		var c configJSON
		res := do(http.MethodPost, base, admin, create).Expect(t, http.StatusCreated, "")
		res.Data(t, &c)
		if !c.HasClientSecret || c.IsEnabled || c.AuthMethod != "local" || c.AutoProvisioning.Enabled || c.AutoProvisioning.DefaultRole != "viewer" ||
			!strings.HasSuffix(c.RedirectURI, "/api/auth/sso/callback") {
			t.Fatalf("created = %+v", c)
		}
		do(http.MethodPost, base, admin, create).Expect(t, http.StatusConflict, "CONFLICT")

		// The secret is stored sealed, and never shown.
		var sealed []byte
		if err := env.App.Engines.Control.QueryRow(context.Background(), `SELECT client_secret FROM sso_configs WHERE tenant_id = $1`, tenant).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, []byte(secret)) {
			t.Fatal("the client secret is stored in clear")
		}
		for _, path := range []string{base, base + "/validate", "/api/tenants/" + tenant + "/sso/statistics"} {
			do(http.MethodGet, path, viewer, nil).Expect(t, http.StatusForbidden, "FORBIDDEN")
			do(http.MethodGet, path, stranger, nil).Expect(t, http.StatusNotFound, "NOT_FOUND")
			res := do(http.MethodGet, path, admin, nil).Expect(t, http.StatusOK, "")
			if bytes.Contains(res.Body, []byte(secret)) || bytes.Contains(res.Body, []byte(`"client_secret"`)) {
				t.Fatalf("%s shows the secret: %s", path, res.Body)
			}
		}

		var v struct {
			Valid bool    `json:"valid"`
			Error *string `json:"error"`
			Keys  int     `json:"keys"`
		}
		do(http.MethodGet, base+"/validate", admin, nil).Data(t, &v)
		if !v.Valid || v.Error != nil || v.Keys < 1 {
			t.Fatalf("validate = %+v", v)
		}

		// Changes; a wrong secret makes sign-ins fail at the provider.
		do(http.MethodPut, base, admin, map[string]any{"client_secret": "wrong"}).Expect(t, http.StatusOK, "")
		do(http.MethodPut, base, viewer, map[string]any{"client_id": "x"}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		do(http.MethodPost, base+"/enable", admin, map[string]string{"auth_method": "both"}).Expect(t, http.StatusOK, "").Data(t, &c)
		if !c.IsEnabled || c.AuthMethod != "both" {
			t.Fatalf("enabled = %+v", c)
		}
		do(http.MethodPost, base+"/enable", admin, map[string]string{"auth_method": "local"}).Expect(t, http.StatusBadRequest, "")
		idp.Queue(&ssotest.User{Subject: "x", Email: "x@corp.test", EmailVerified: true})
		b := env.NewBrowser(t)
		b.Follow(t, env.TLSURL(t)+"/api/auth/sso/login/"+tenant, nil).Expect(t, http.StatusBadRequest, "SSO_PROVIDER_ERROR")
		do(http.MethodPut, base, admin, map[string]any{"client_secret": secret}).Expect(t, http.StatusOK, "")

		do(http.MethodPut, base+"/auto-provisioning", admin, map[string]any{"enabled": true, "default_role": "user",
			"allowed_email_domains": []string{"@Corp.Test"}, "group_role_mapping": map[string]string{"g1": "admin"}}).Expect(t, http.StatusOK, "").Data(t, &c)
		if !c.AutoProvisioning.Enabled || c.AutoProvisioning.DefaultRole != "user" || len(c.AutoProvisioning.AllowedEmailDomains) != 1 ||
			c.AutoProvisioning.AllowedEmailDomains[0] != "corp.test" || c.AutoProvisioning.GroupRoleMapping["g1"] != "admin" {
			t.Fatalf("auto-provisioning = %+v", c.AutoProvisioning)
		}
		do(http.MethodPut, base+"/auto-provisioning", admin, map[string]any{"group_role_mapping": map[string]string{"g1": "root"}}).
			Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")

		idp.Queue(&ssotest.User{Subject: "x", Email: "x@corp.test", EmailVerified: true})
		b.Follow(t, env.TLSURL(t)+"/api/auth/sso/login/"+tenant, nil).Expect(t, http.StatusOK, "")
		var st struct {
			Usage struct {
				TotalSSOUsers int64 `json:"total_sso_users"`
				ActiveTokens  int64 `json:"active_tokens"`
			} `json:"usage"`
			RecentLogins []struct {
				UserEmail string `json:"user_email"`
			} `json:"recent_logins"`
		}
		do(http.MethodGet, "/api/tenants/"+tenant+"/sso/statistics", admin, nil).Expect(t, http.StatusOK, "").Data(t, &st)
		if st.Usage.TotalSSOUsers != 1 || st.Usage.ActiveTokens != 1 || len(st.RecentLogins) != 1 || st.RecentLogins[0].UserEmail != "x@corp.test" {
			t.Fatalf("statistics = %+v", st)
		}

		// The platform-wide list is for platform administrators only.
		do(http.MethodGet, "/api/tenants/sso/configs", admin, nil).Expect(t, http.StatusForbidden, "FORBIDDEN")
		root := env.Register(t, "Root")
		if _, _, err := env.App.Accounts.EnsurePlatformAdmin(context.Background(), account.AdminAccount{Email: root.Email}); err != nil {
			t.Fatal(err)
		}
		env.Login(t, root)
		var list struct {
			Configurations []struct {
				TenantID  string `json:"tenant_id"`
				IsEnabled bool   `json:"is_enabled"`
			} `json:"configurations"`
		}
		do(http.MethodGet, "/api/tenants/sso/configs?only_enabled=true", root, nil).Expect(t, http.StatusOK, "").Data(t, &list)
		if len(list.Configurations) != 1 || list.Configurations[0].TenantID != tenant {
			t.Fatalf("list = %+v", list)
		}

		// Disabling returns the tenant to passwords; deleting with
		// identities needs force.
		do(http.MethodPost, base+"/disable", admin, map[string]bool{"keep_azure_identities": false}).Expect(t, http.StatusOK, "").Data(t, &c)
		if c.IsEnabled || c.AuthMethod != "local" {
			t.Fatalf("disabled = %+v", c)
		}
		b.Get(t, env.TLSURL(t)+"/api/auth/sso/login/"+tenant).Expect(t, http.StatusBadRequest, "SSO_NOT_AVAILABLE")
		do(http.MethodDelete, base, admin, nil).Expect(t, http.StatusConflict, "CONFLICT")
		do(http.MethodDelete, base+"?force=true", viewer, nil).Expect(t, http.StatusForbidden, "FORBIDDEN")
		do(http.MethodDelete, base+"?force=true", admin, nil).Expect(t, http.StatusOK, "")
		do(http.MethodGet, base, admin, nil).Expect(t, http.StatusNotFound, "NOT_FOUND")

		// Configuration changes are audited, never with the secret.
		audit := do(http.MethodGet, "/api/tenants/"+tenant+"/audit?action=sso.config.create", admin, nil).Expect(t, http.StatusOK, "")
		if !bytes.Contains(audit.Body, []byte(`sso.config.create`)) || bytes.Contains(audit.Body, []byte(secret)) {
			t.Fatalf("audit = %s", audit.Body)
		}
		if strings.Contains(env.Logs.String(), secret) {
			t.Fatal("the client secret is in the log")
		}
	})
}
