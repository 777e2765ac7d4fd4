package sso_test

import (
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sso/ssotest"
)

type domainJSON struct {
	Domain      string  `json:"domain"`
	Verified    bool    `json:"verified"`
	VerifiedAt  *string `json:"verified_at"`
	RecordName  string  `json:"txt_record_name"`
	RecordValue string  `json:"txt_record_value"`
}

func TestDomainsAreClaimedByProofAndLinkAccounts(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		resolver := ssotest.NewDNS(t)
		idp := ssotest.NewProvider(t)
		cfg := apptest.Config(t, shape)
		cfg.DNSServer = resolver.Addr
		env := apptest.Start(t, cfg)
		admin, viewer, stranger := env.SignUp(t, "Admin"), env.SignUp(t, "Viewer"), env.SignUp(t, "Stranger")
		tenant := env.CreateTenant(t, admin, "Corp")
		env.AddMember(t, admin, tenant, viewer, "viewer")
		rival := env.CreateTenant(t, stranger, "Rival")
		domains := "/api/tenants/" + tenant + "/domains"
		do := func(method, path string, u *apptest.User, body any) *apptest.Response {
			return env.Do(t, apptest.Request{Method: method, Path: path, Token: u.AccessToken, Body: body})
		}

		do(http.MethodPost, domains, viewer, map[string]string{"domain": "corp.test"}).Expect(t, http.StatusForbidden, "FORBIDDEN")
		do(http.MethodPost, domains, stranger, map[string]string{"domain": "corp.test"}).Expect(t, http.StatusNotFound, "NOT_FOUND")
		do(http.MethodPost, domains, admin, map[string]string{"domain": "localhost"}).Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")
		var d domainJSON
		do(http.MethodPost, domains, admin, map[string]string{"domain": "Corp.Test"}).Expect(t, http.StatusCreated, "").Data(t, &d)
		if d.Domain != "corp.test" || d.Verified || d.RecordName != "_tenantry-challenge.corp.test" || d.RecordValue == "" {
			t.Fatalf("claim = %+v", d)
		}
		// Not published yet.
		do(http.MethodPost, domains+"/corp.test/verify", admin, nil).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		resolver.SetTXT(d.RecordName, "v=spf1 -all", "tenantry-verification=not-the-token")
		do(http.MethodPost, domains+"/corp.test/verify", admin, nil).Expect(t, http.StatusBadRequest, "BAD_REQUEST")
		resolver.SetTXT(d.RecordName, "v=spf1 -all", d.RecordValue)
		do(http.MethodPost, domains+"/corp.test/verify", viewer, nil).Expect(t, http.StatusForbidden, "FORBIDDEN")
		do(http.MethodPost, domains+"/corp.test/verify", admin, nil).Expect(t, http.StatusOK, "").Data(t, &d)
		if !d.Verified || d.VerifiedAt == nil {
			t.Fatalf("verified = %+v", d)
		}

		// Another tenant cannot take it while the proof stands.
		var r domainJSON
		do(http.MethodPost, "/api/tenants/"+rival+"/domains", stranger, map[string]string{"domain": "corp.test"}).Expect(t, http.StatusCreated, "").Data(t, &r)
		resolver.SetTXT(r.RecordName, d.RecordValue, r.RecordValue)
		do(http.MethodPost, "/api/tenants/"+rival+"/domains/corp.test/verify", stranger, nil).Expect(t, http.StatusConflict, "CONFLICT")

		// Single sign-on with the domain proven: an existing account whose
		// address the provider vouches for is linked.
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenant + "/sso/config", Token: admin.AccessToken, Body: map[string]any{
			"provider_type": "oidc", "issuer": idp.Issuer(), "client_id": idp.Mock.ClientID, "client_secret": idp.Mock.ClientSecret, "enable": true,
			"auto_provisioning": map[string]any{"enabled": true},
		}}).Expect(t, http.StatusCreated, "")
		bob := env.SignUp(t, "Bob")
		if _, err := env.App.Engines.Control.Exec(t.Context(), `UPDATE users SET email = 'bob@corp.test' WHERE id = $1`, bob.ID); err != nil {
			t.Fatal(err)
		}
		idp.Queue(&ssotest.User{Subject: "bob-at-idp", Email: "bob@corp.test", EmailVerified: false})
		b := env.NewBrowser(t)
		login := env.TLSURL(t) + "/api/auth/sso/login/" + tenant
		b.Follow(t, login, nil).Expect(t, http.StatusConflict, "SSO_LINK_REQUIRED")
		idp.Queue(&ssotest.User{Subject: "bob-at-idp", Email: "bob@corp.test", EmailVerified: true})
		var l ssoLogin
		b.Follow(t, login, nil).Expect(t, http.StatusOK, "").Data(t, &l)
		if l.User.ID != bob.ID {
			t.Fatalf("linked to %+v, want %s", l.User, bob.ID)
		}
		_, details := lastSignIn(t, env, tenant)
		if details["linked"] != true {
			t.Fatalf("audit = %v", details)
		}

		// Detection finds the tenant by the verified domain.
		var det struct {
			HasSSO  bool `json:"has_sso"`
			Tenants []struct {
				TenantID string `json:"tenant_id"`
				LoginURL string `json:"login_url"`
			} `json:"tenants"`
		}
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/detect", Body: map[string]string{"email": "Someone@corp.test"}}).
			Expect(t, http.StatusOK, "").Data(t, &det)
		if !det.HasSSO || len(det.Tenants) != 1 || det.Tenants[0].TenantID != tenant {
			t.Fatalf("detect = %+v", det)
		}
		b.Get(t, env.TLSURL(t)+det.Tenants[0].LoginURL).Expect(t, http.StatusFound, "")
		env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/detect", Body: map[string]string{"email": "nobody"}}).
			Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")
		var avail struct {
			Available   bool    `json:"available"`
			SSOLoginURL *string `json:"sso_login_url"`
		}
		env.Get(t, "/api/auth/sso/check-availability/"+tenant, "").Expect(t, http.StatusOK, "").Data(t, &avail)
		if !avail.Available || avail.SSOLoginURL == nil {
			t.Fatalf("availability = %+v", avail)
		}
		env.Get(t, "/api/auth/sso/check-availability/"+rival, "").Expect(t, http.StatusOK, "").Data(t, &avail)
		if avail.Available {
			t.Fatalf("rival availability = %+v", avail)
		}

		// Once the first tenant's proof is withdrawn, the rival may take
		// the domain over.
		resolver.SetTXT(r.RecordName, r.RecordValue)
		do(http.MethodPost, "/api/tenants/"+rival+"/domains/corp.test/verify", stranger, nil).Expect(t, http.StatusOK, "")
		var mine []domainJSON
		do(http.MethodGet, domains, admin, nil).Expect(t, http.StatusOK, "").Data(t, &mine)
		if len(mine) != 1 || mine[0].Verified {
			t.Fatalf("domains after the takeover = %+v", mine)
		}
	})
}
