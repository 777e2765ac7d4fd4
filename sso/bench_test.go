package sso_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sso/ssotest"
)

// BenchmarkCallback measures tenantry's handling of a sign-in's callback
// for a returning member: taking the state, exchanging the code, verifying
// the ID token, updating the identity and role, sealing the provider's
// tokens and opening a session. The provider runs in the process; the time
// it spends answering (token endpoint, keys) is measured at the provider
// and left out, so the figures are tenantry's own. Reported: p50 and p99
// in microseconds.
func BenchmarkCallback(b *testing.B) {
	for _, shape := range apptest.Shapes {
		b.Run(string(shape), func(b *testing.B) {
			apptest.RequireShape(b, shape)
			benchmarkCallback(b, shape)
		})
	}
}

func benchmarkCallback(b *testing.B, shape config.Shape) {
	env := apptest.StartShape(b, shape)
	admin := env.SignUp(b, "Admin")
	tenant := env.CreateTenant(b, admin, "Bench")
	idp := ssotest.NewProvider(b)
	env.Do(b, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenant + "/sso/config", Token: admin.AccessToken, Body: map[string]any{
		"provider_type": "oidc", "issuer": idp.Issuer(), "client_id": idp.Mock.ClientID, "client_secret": idp.Mock.ClientSecret, "enable": true,
		"scopes": []string{"profile", "email", "groups"}, "auto_provisioning": map[string]any{"enabled": true, "group_role_mapping": map[string]string{"staff": "user"}},
	}}).Expect(b, http.StatusCreated, "")
	browser := env.NewBrowser(b)
	login := env.TLSURL(b) + "/api/auth/sso/login/" + tenant
	user := func() *ssotest.User {
		return &ssotest.User{Subject: "returning", Email: "returning@corp.test", EmailVerified: true, GivenName: "Re", FamilyName: "Turning", Groups: []string{"staff"}}
	}
	signIn := func() time.Duration {
		idp.Queue(user())
		start := browser.Get(b, login)
		cb := browser.Get(b, start.Header.Get("Location")).Header.Get("Location")
		idp.TimeSpent()
		t0 := time.Now()
		res := browser.Get(b, cb)
		d := time.Since(t0) - idp.TimeSpent()
		if res.Status != http.StatusOK {
			b.Fatalf("callback answered %d: %s", res.Status, res.Body)
		}
		return d
	}
	// The first sign-in provisions the account and discovers the provider.
	signIn()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		durations = append(durations, signIn())
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(durations[min(len(durations)-1, len(durations)*99/100)].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
