package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// Ensure every response that carries tokens forbids caches to keep it:
// login, refresh and the administration sign-in that sets a token cookie.
func TestTokenResponsesAreNotStored(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Cached")

		login := env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/login", Body: map[string]string{"email": u.Email, "password": apptest.Password}}).
			Expect(t, 200, "")
		if got := login.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("login Cache-Control = %q, want no-store", got)
		}
		var tokens struct {
			RefreshToken string `json:"refresh_token"`
		}
		login.Data(t, &tokens)

		refreshed := env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Body: map[string]string{"refresh_token": tokens.RefreshToken}}).
			Expect(t, 200, "")
		if got := refreshed.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("refresh Cache-Control = %q, want no-store", got)
		}

		if _, _, err := env.App.Accounts.EnsurePlatformAdmin(context.Background(), account.AdminAccount{
			Email: "root@example.com", Password: apptest.Password, FirstName: "Root", LastName: "Admin"}); err != nil {
			t.Fatal(err)
		}
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		r, err := client.PostForm(env.URL+"/admin/login", url.Values{"email": {"root@example.com"}, "password": {apptest.Password}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 {
			t.Fatalf("admin sign-in: %d, cookies %v", r.StatusCode, r.Cookies())
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("admin sign-in Cache-Control = %q, want no-store", got)
		}
	})
}
