package sso_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sso/ssotest"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// appURL is the application single sign-on sends browsers back to.
const appURL = "https://app.example.test/sso"

type fixture struct {
	env    *apptest.Env
	admin  *apptest.User
	tenant string
	idp    *ssotest.Provider
}

func setup(t *testing.T, shape config.Shape, auto map[string]any) *fixture {
	t.Helper()
	env := apptest.StartShape(t, shape)
	f := &fixture{env: env, admin: env.SignUp(t, "Admin"), idp: ssotest.NewProvider(t)}
	f.tenant = env.CreateTenant(t, f.admin, "Acme")
	body := map[string]any{
		"provider_type": "oidc", "issuer": f.idp.Issuer(), "client_id": f.idp.Mock.ClientID, "client_secret": f.idp.Mock.ClientSecret,
		"allowed_redirect_urls": []string{appURL}, "scopes": []string{"profile", "email", "groups"}, "enable": true,
	}
	if auto != nil {
		body["auto_provisioning"] = auto
	}
	env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + f.tenant + "/sso/config", Token: f.admin.AccessToken, Body: body}).
		Expect(t, http.StatusCreated, "")
	return f
}

func (f *fixture) loginURL(t *testing.T, query string) string {
	u := f.env.TLSURL(t) + "/api/auth/sso/login/" + f.tenant
	if query != "" {
		u += "?" + query
	}
	return u
}

// toApp stops following redirects at the application.
func toApp(u *url.URL) bool { return strings.HasPrefix(u.String(), "https://app.example.test") }

// signIn runs a whole sign-in in b and returns the last answer: the
// callback's, or the redirect to the application.
func (f *fixture) signIn(t *testing.T, b *apptest.Browser, query string) *apptest.Response {
	t.Helper()
	return b.Follow(t, f.loginURL(t, query), toApp)
}

type ssoLogin struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	AuthMethod   string `json:"auth_method"`
	TenantID     string `json:"tenant_id"`
	User         struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		FirstName string `json:"first_name"`
	} `json:"user"`
	Tenants []struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	} `json:"tenants"`
}

func (l *ssoLogin) role(tenant string) string {
	for _, m := range l.Tenants {
		if m.ID == tenant {
			return m.Role
		}
	}
	return ""
}

// lastSignIn returns the details of the tenant's latest sign-in entry.
func lastSignIn(t *testing.T, env *apptest.Env, chain string) (outcome string, details map[string]any) {
	t.Helper()
	l, err := env.App.Audit.ListPage(context.Background(), chain, audit.Filter{Action: "auth.sso.login", PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) == 0 {
		t.Fatalf("no sign-in recorded in chain %s", chain)
	}
	if err := json.Unmarshal(l.Entries[0].Details, &details); err != nil {
		t.Fatal(err)
	}
	return l.Entries[0].Outcome, details
}

func expectRefused(t *testing.T, env *apptest.Env, chain string, res *apptest.Response, status int, code, reason string) {
	t.Helper()
	res.Expect(t, status, code)
	outcome, details := lastSignIn(t, env, chain)
	if outcome != audit.OutcomeDenied || details["reason"] != reason || details["error_code"] != code {
		t.Fatalf("audit entry = %s %v, want denied with reason %s and code %s", outcome, details, reason, code)
	}
}

func TestSignInProvisionsAndMapsGroupsAtEverySignIn(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{
			"enabled": true, "default_role": "viewer", "group_role_mapping": map[string]string{"staff": "user", "owners": "admin"},
		})
		b := f.env.NewBrowser(t)
		f.idp.Queue(&ssotest.User{Subject: "ada-1", Email: "ada@corp.test", EmailVerified: true, GivenName: "Ada", FamilyName: "L", Groups: []string{"staff"}})
		var login ssoLogin
		res := f.signIn(t, b, "").Expect(t, http.StatusOK, "")
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control = %q", res.Header.Get("Cache-Control"))
		}
		res.Data(t, &login)
		if login.AuthMethod != "sso" || login.TenantID != f.tenant || login.User.Email != "ada@corp.test" || login.User.FirstName != "Ada" ||
			login.role(f.tenant) != "user" {
			t.Fatalf("login = %+v", login)
		}
		outcome, details := lastSignIn(t, f.env, f.tenant)
		if outcome != audit.OutcomeSuccess || details["provisioned"] != true {
			t.Fatalf("audit = %s %v", outcome, details)
		}
		// The session is an ordinary one.
		f.env.Get(t, "/api/tenants/"+f.tenant, login.AccessToken).Expect(t, http.StatusOK, "")
		var ids struct {
			Identities []struct {
				TenantID string `json:"tenant_id"`
				Subject  string `json:"subject"`
				Issuer   string `json:"issuer"`
			} `json:"identities"`
			Total int `json:"total"`
		}
		f.env.Get(t, "/api/auth/sso/identities", login.AccessToken).Expect(t, http.StatusOK, "").Data(t, &ids)
		if ids.Total != 1 || ids.Identities[0].Subject != "ada-1" || ids.Identities[0].Issuer != f.idp.Issuer() {
			t.Fatalf("identities = %+v", ids)
		}

		// Promoted by a group, then removed from every group: the role
		// follows the directory at each sign-in.
		f.idp.Queue(&ssotest.User{Subject: "ada-1", Email: "ada@corp.test", EmailVerified: true, Groups: []string{"staff", "owners"}})
		f.signIn(t, b, "").Expect(t, http.StatusOK, "").Data(t, &login)
		if login.role(f.tenant) != "admin" {
			t.Fatalf("role after joining owners = %q", login.role(f.tenant))
		}
		f.idp.Queue(&ssotest.User{Subject: "ada-1", Email: "ada@corp.test", EmailVerified: true, Groups: []string{}})
		f.signIn(t, b, "").Expect(t, http.StatusOK, "").Data(t, &login)
		if login.role(f.tenant) != "viewer" {
			t.Fatalf("role after leaving every group = %q", login.role(f.tenant))
		}
		_, details = lastSignIn(t, f.env, f.tenant)
		if rc, _ := details["role_changed"].(map[string]any); rc["from"] != "admin" || rc["to"] != "viewer" {
			t.Fatalf("role change not audited: %v", details)
		}
	})
}

func TestSignInWithoutProvisioningAdmitsOnlyMembers(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, nil)
		b := f.env.NewBrowser(t)
		f.idp.Queue(&ssotest.User{Subject: "nobody", Email: "nobody@corp.test", EmailVerified: true})
		expectRefused(t, f.env, f.tenant, f.signIn(t, b, ""), http.StatusForbidden, "SSO_NOT_PROVISIONED", "not_provisioned")
	})
}

func TestReturnURLGetsAOneTimeCode(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true})
		b := f.env.NewBrowser(t)
		f.idp.Queue(&ssotest.User{Subject: "grace", Email: "grace@corp.test", EmailVerified: true})
		res := f.signIn(t, b, "return_url="+url.QueryEscape(appURL+"/done?x=1")).Expect(t, http.StatusFound, "")
		back, err := url.Parse(res.Header.Get("Location"))
		if err != nil || back.Host != "app.example.test" || back.Path != "/sso/done" || back.Query().Get("x") != "1" {
			t.Fatalf("sent back to %q", res.Header.Get("Location"))
		}
		code := back.Query().Get("code")
		if code == "" || back.Query().Has("access_token") || strings.Contains(back.RawQuery, "token") {
			t.Fatalf("the return URL carries %q", back.RawQuery)
		}
		var login ssoLogin
		f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/exchange", Body: map[string]string{"code": code}}).
			Expect(t, http.StatusOK, "").Data(t, &login)
		if login.AuthMethod != "sso" || login.AccessToken == "" || login.role(f.tenant) != "viewer" {
			t.Fatalf("exchange = %+v", login)
		}
		// Single use.
		f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/exchange", Body: map[string]string{"code": code}}).
			Expect(t, http.StatusBadRequest, "SSO_CODE_INVALID")

		// Open redirects are refused before anything is started.
		for _, evil := range []string{"https://evil.example/sso", "https://app.example.test.evil.net/sso", "https://app.example.test/ssoevil",
			"https://user@app.example.test/sso", "https://app.example.test/sso/../admin", "http://app.example.test/sso", "//evil.example/sso"} {
			b.Get(t, f.loginURL(t, "return_url="+url.QueryEscape(evil))).Expect(t, http.StatusBadRequest, "REDIRECT_NOT_ALLOWED")
		}

		// A provider's refusal goes back to the application as error=.
		start := b.Get(t, f.loginURL(t, "return_url="+url.QueryEscape(appURL))).Expect(t, http.StatusFound, "")
		authURL, _ := url.Parse(start.Header.Get("Location"))
		cb := f.env.TLSURL(t) + "/api/auth/sso/callback?error=access_denied&state=" + url.QueryEscape(authURL.Query().Get("state"))
		res = b.Get(t, cb).Expect(t, http.StatusFound, "")
		if back, _ := url.Parse(res.Header.Get("Location")); back.Query().Get("error") != "SSO_PROVIDER_ERROR" || back.Query().Has("code") {
			t.Fatalf("refusal sent back to %q", res.Header.Get("Location"))
		}
		if outcome, details := lastSignIn(t, f.env, f.tenant); outcome != audit.OutcomeDenied || details["reason"] != "provider_error" {
			t.Fatalf("audit = %s %v", outcome, details)
		}
	})
}

// stepToProvider starts a sign-in in b and returns the provider's URL,
// not visited yet.
func (f *fixture) stepToProvider(t *testing.T, b *apptest.Browser) string {
	t.Helper()
	res := b.Get(t, f.loginURL(t, "")).Expect(t, http.StatusFound, "")
	return res.Header.Get("Location")
}

// stepToCallback visits the provider and returns the callback URL it sends
// the browser to, not visited yet.
func stepToCallback(t *testing.T, b *apptest.Browser, providerURL string) string {
	t.Helper()
	res := b.Get(t, providerURL)
	if res.Status != http.StatusFound {
		t.Fatalf("provider answered %d: %s", res.Status, res.Body)
	}
	return res.Header.Get("Location")
}

func TestStateIsSingleUseShortLivedAndBoundToTheBrowser(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true})
		user := func() *ssotest.User {
			return &ssotest.User{Subject: "alan", Email: "alan@corp.test", EmailVerified: true}
		}
		b := f.env.NewBrowser(t)

		// Replayed.
		f.idp.Queue(user())
		cb := stepToCallback(t, b, f.stepToProvider(t, b))
		b.Get(t, cb).Expect(t, http.StatusOK, "")
		expectRefused(t, f.env, f.tenant, b.Get(t, cb), http.StatusBadRequest, "SSO_STATE_INVALID", "state_replayed")

		// From another browser: the victim's callback URL opened by
		// someone else, or the attacker's opened by the victim.
		f.idp.Queue(user())
		cb = stepToCallback(t, b, f.stepToProvider(t, b))
		other := f.env.NewBrowser(t)
		expectRefused(t, f.env, f.tenant, other.Get(t, cb), http.StatusBadRequest, "SSO_STATE_INVALID", "state_wrong_browser")

		// Expired: ten minutes is all a sign-in may take.
		f.idp.Queue(user())
		providerURL := f.stepToProvider(t, b)
		if _, err := f.env.App.Engines.Control.Exec(context.Background(), `UPDATE sso_states SET expires_at = $1 WHERE used_at IS NULL`,
			time.Now().Add(-time.Second).UTC()); err != nil {
			t.Fatal(err)
		}
		expectRefused(t, f.env, f.tenant, b.Get(t, stepToCallback(t, b, providerURL)), http.StatusBadRequest, "SSO_STATE_INVALID", "state_expired")

		// Unknown or missing.
		b.Get(t, f.env.TLSURL(t)+"/api/auth/sso/callback?code=x&state=forged").Expect(t, http.StatusBadRequest, "SSO_STATE_INVALID")
		b.Get(t, f.env.TLSURL(t)+"/api/auth/sso/azure/callback?code=x").Expect(t, http.StatusBadRequest, "SSO_STATE_INVALID")

		// For another tenant than the one that started it.
		otherTenant := f.env.CreateTenant(t, f.admin, "Other")
		f.idp.Queue(user())
		cb = stepToCallback(t, b, f.stepToProvider(t, b))
		expectRefused(t, f.env, f.tenant, b.Get(t, cb+"&tenant_id="+otherTenant), http.StatusBadRequest, "SSO_TENANT_MISMATCH", "tenant_mismatch")
	})
}

func TestIDTokenIsVerifiedInFull(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true})
		forger := ssotest.NewKey(t)
		now := time.Now()
		cases := []struct {
			name   string
			user   *ssotest.User
			tamper func(string) string
			reason string
		}{
			{name: "signed by another key", tamper: func(raw string) string { return ssotest.Resign(raw, forger, f.idp.KeyID()) }, reason: "bad_signature"},
			{name: "alg none", tamper: ssotest.AlgNone, reason: "bad_signature"},
			{name: "HS256 keyed by the public key", tamper: func(raw string) string {
				return ssotest.HS256WithKey(raw, f.idp.PublicKeyPEM(), f.idp.KeyID())
			}, reason: "bad_signature"},
			{name: "wrong audience", user: &ssotest.User{Extra: map[string]any{"aud": "someone-else"}}, reason: "wrong_audience"},
			{name: "wrong issuer", user: &ssotest.User{Extra: map[string]any{"iss": "https://evil.example/oidc"}}, reason: "wrong_issuer"},
			{name: "expired", user: &ssotest.User{Extra: map[string]any{"exp": now.Add(-5 * time.Minute).Unix()}}, reason: "token_expired"},
			{name: "issued in the future", user: &ssotest.User{Extra: map[string]any{"iat": now.Add(time.Hour).Unix()}}, reason: "bad_issued_at"},
			{name: "nonce mismatch", user: &ssotest.User{Extra: map[string]any{"nonce": "replayed-nonce"}}, reason: "nonce_mismatch"},
			{name: "no nonce", user: &ssotest.User{Extra: map[string]any{"nonce": nil}}, reason: "nonce_mismatch"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				u := c.user
				if u == nil {
					u = &ssotest.User{}
				}
				u.Subject, u.Email, u.EmailVerified = "eve", "eve@corp.test", true
				f.idp.Queue(u)
				f.idp.Tamper(c.tamper)
				defer f.idp.Tamper(nil)
				expectRefused(t, f.env, f.tenant, f.signIn(t, f.env.NewBrowser(t), ""), http.StatusUnauthorized, "SSO_TOKEN_INVALID", c.reason)
			})
		}
		// Nothing was provisioned by any of them.
		var n int
		if err := f.env.App.Engines.Control.QueryRow(context.Background(), `SELECT count(*) FROM users WHERE email = $1`, "eve@corp.test").Scan(&n); err != nil || n != 0 {
			t.Fatalf("accounts of eve: %d, %v", n, err)
		}
	})
}

func TestAllowedDomainsMatchExactly(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true, "allowed_email_domains": []string{"@corp.test"}})
		f.idp.Queue(&ssotest.User{Subject: "mallory", Email: "mallory@evilcorp.test", EmailVerified: true})
		expectRefused(t, f.env, f.tenant, f.signIn(t, f.env.NewBrowser(t), ""), http.StatusForbidden, "SSO_DOMAIN_NOT_ALLOWED", "domain_not_allowed")
		f.idp.Queue(&ssotest.User{Subject: "bob", Email: "bob@corp.test", EmailVerified: true})
		f.signIn(t, f.env.NewBrowser(t), "").Expect(t, http.StatusOK, "")
	})
}

func TestEnforcedSSORefusesPasswordSessions(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true, "group_role_mapping": map[string]string{"owners": "admin"}})
		// The admin's identity at the provider, linked after a password
		// confirmation, keeps the tenant reachable once enforced.
		member := f.env.SignUp(t, "Member")
		f.env.AddMember(t, f.admin, f.tenant, member, "user")
		f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + f.tenant + "/sso/config/enable", Token: f.admin.AccessToken,
			Body: map[string]string{"auth_method": "sso"}}).Expect(t, http.StatusOK, "")

		res := f.env.Get(t, "/api/tenants/"+f.tenant, member.AccessToken).Expect(t, http.StatusForbidden, "SSO_REQUIRED")
		var env struct {
			Error struct {
				Details struct {
					LoginURL string `json:"login_url"`
				} `json:"details"`
			} `json:"error"`
		}
		res.Decode(t, &env)
		if env.Error.Details.LoginURL != "/api/auth/sso/login/"+f.tenant {
			t.Fatalf("details = %s", res.Body)
		}
		// The tenant is still listed.
		var list []struct {
			ID string `json:"id"`
		}
		f.env.Get(t, "/api/tenants", member.AccessToken).Expect(t, http.StatusOK, "").Data(t, &list)
		if len(list) != 1 || list[0].ID != f.tenant {
			t.Fatalf("tenants = %+v", list)
		}

		// The member links their identity (password confirmed once), then
		// comes through the provider.
		var started struct {
			AuthorizationURL string `json:"authorization_url"`
		}
		b := f.env.NewBrowser(t)
		linkRes := f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/link/" + f.tenant, Token: member.AccessToken,
			Body: map[string]string{"password": "wrong-password-1"}})
		linkRes.Expect(t, http.StatusBadRequest, "VALIDATION_ERROR")
		linkRes = f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/link/" + f.tenant, Token: member.AccessToken,
			Body: map[string]string{"password": apptest.Password}}).Expect(t, http.StatusOK, "")
		linkRes.Data(t, &started)
		// The browser gets the cookie the link route set.
		cookie := linkRes.Header.Get("Set-Cookie")
		if !strings.HasPrefix(cookie, "__Host-tenantry-sso=") || !strings.Contains(cookie, "Secure") || !strings.Contains(cookie, "HttpOnly") {
			t.Fatalf("Set-Cookie = %q", cookie)
		}
		f.idp.Queue(&ssotest.User{Subject: "member-at-idp", Email: "someone-else@corp.test"})
		cb := stepToCallback(t, b, started.AuthorizationURL)
		// Without the cookie this browser never received, the link fails.
		b.Get(t, cb).Expect(t, http.StatusBadRequest, "SSO_STATE_INVALID")

		// Linking and signing in from the browser that has the cookie.
		b2 := f.env.NewBrowser(t)
		var login ssoLogin
		linkRes = f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/link/" + f.tenant, Token: member.AccessToken,
			Body: map[string]string{"password": apptest.Password}}).Expect(t, http.StatusOK, "")
		linkRes.Data(t, &started)
		b2.SetCookie(t, linkRes.Header.Get("Set-Cookie"))
		f.idp.Queue(&ssotest.User{Subject: "member-at-idp", Email: "someone-else@corp.test"})
		b2.Follow(t, started.AuthorizationURL, nil).Expect(t, http.StatusOK, "").Data(t, &login)
		if login.User.ID != member.ID || login.AuthMethod != "sso" {
			t.Fatalf("linked sign-in = %+v", login)
		}
		f.env.Get(t, "/api/tenants/"+f.tenant, login.AccessToken).Expect(t, http.StatusOK, "")
		// Later sign-ins find the identity without any password.
		f.idp.Queue(&ssotest.User{Subject: "member-at-idp", Email: "someone-else@corp.test"})
		f.signIn(t, f.env.NewBrowser(t), "").Expect(t, http.StatusOK, "").Data(t, &login)
		if login.User.ID != member.ID {
			t.Fatalf("second sign-in = %+v", login)
		}
	})
}

func TestExistingAccountsAreNeverMergedSilently(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true})
		victim := f.env.Register(t, "Victim")
		// The provider says the address is its, but the tenant has not
		// proven the domain: a link is required.
		f.idp.Queue(&ssotest.User{Subject: "impostor", Email: victim.Email, EmailVerified: true})
		res := f.signIn(t, f.env.NewBrowser(t), "")
		expectRefused(t, f.env, f.tenant, res, http.StatusConflict, "SSO_LINK_REQUIRED", "link_required")
		var n int
		if err := f.env.App.Engines.Control.QueryRow(context.Background(), `SELECT count(*) FROM sso_identities WHERE user_id = $1`, victim.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("identities of the victim: %d, %v", n, err)
		}
	})
}

func TestProviderTokensServeUserInfoRefreshAndLogout(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		f := setup(t, shape, map[string]any{"enabled": true})
		f.idp.Queue(&ssotest.User{Subject: "tok-1", Email: "tok@corp.test", EmailVerified: true})
		var l ssoLogin
		f.signIn(t, f.env.NewBrowser(t), "").Expect(t, http.StatusOK, "").Data(t, &l)

		var info struct {
			UserInfo map[string]any `json:"user_info"`
		}
		f.env.Get(t, "/api/auth/sso/user-info?tenant_id="+f.tenant, l.AccessToken).Expect(t, http.StatusOK, "").Data(t, &info)
		if info.UserInfo["sub"] != "tok-1" {
			t.Fatalf("user info = %v", info.UserInfo)
		}
		f.env.Get(t, "/api/auth/sso/user-info?tenant_id="+f.tenant, f.admin.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
		var refreshed struct {
			ExpiresAt *time.Time `json:"expires_at"`
		}
		f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/refresh", Token: l.AccessToken, Body: map[string]string{"tenant_id": f.tenant}}).
			Expect(t, http.StatusOK, "").Data(t, &refreshed)
		if refreshed.ExpiresAt == nil || !refreshed.ExpiresAt.After(time.Now()) {
			t.Fatalf("refreshed = %+v", refreshed)
		}
		f.env.Get(t, "/api/auth/sso/user-info?tenant_id="+f.tenant, l.AccessToken).Expect(t, http.StatusOK, "")

		// The refresh job renews tokens about to expire.
		if _, err := f.env.App.Engines.Control.Exec(context.Background(), `UPDATE sso_identities SET token_expires_at = $1 WHERE user_id = $2`,
			time.Now().Add(time.Minute).UTC(), l.User.ID); err != nil {
			t.Fatal(err)
		}
		if n, err := f.env.App.SSO.RefreshExpiring(context.Background(), 10*time.Minute); err != nil || n != 1 {
			t.Fatalf("refreshed %d, %v", n, err)
		}
		var expires time.Time
		if err := f.env.App.Engines.Control.QueryRow(context.Background(), `SELECT token_expires_at FROM sso_identities WHERE user_id = $1`,
			l.User.ID).Scan(&expires); err != nil || !expires.After(time.Now().Add(5*time.Minute)) {
			t.Fatalf("expires after the job: %v, %v", expires, err)
		}

		var out struct {
			LogoutURL *string `json:"logout_url"`
		}
		f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/logout/" + f.tenant, Token: l.AccessToken,
			Body: map[string]string{"post_logout_redirect_uri": "https://evil.example/"}}).Expect(t, http.StatusBadRequest, "REDIRECT_NOT_ALLOWED")
		f.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/auth/sso/logout/" + f.tenant, Token: l.AccessToken}).
			Expect(t, http.StatusOK, "").Data(t, &out)
		f.env.Get(t, "/api/auth/sso/identities", l.AccessToken).Expect(t, http.StatusUnauthorized, "TOKEN_REVOKED")
		var stored int
		if err := f.env.App.Engines.Control.QueryRow(context.Background(), `SELECT count(*) FROM sso_identities WHERE user_id = $1 AND access_token IS NOT NULL`,
			l.User.ID).Scan(&stored); err != nil || stored != 0 {
			t.Fatalf("provider tokens kept after logout: %d, %v", stored, err)
		}
	})
}
