package api_test

import (
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// A session that cannot be looked up is the server's failure, not the
// client's: the answer is 503, which a client retries, never a 401 that
// would sign it out.
func TestSessionLookupFailureIsNotUnauthorized(t *testing.T) {
	t.Parallel()
	env := apptest.StartShape(t, config.Production)
	u := env.SignUp(t, "Stranded")
	env.Get(t, "/api/users/me", u.AccessToken).Expect(t, http.StatusOK, "")
	if _, err := env.App.Engines.Control.Exec(t.Context(), `ALTER TABLE sessions RENAME TO sessions_away`); err != nil {
		t.Fatal(err)
	}
	res := env.Get(t, "/api/users/me", u.AccessToken)
	if res.Status == http.StatusUnauthorized {
		t.Fatalf("a failed session lookup answered 401: %s", res.Body)
	}
	if _, err := env.App.Engines.Control.Exec(t.Context(), `ALTER TABLE sessions_away RENAME TO sessions`); err != nil {
		t.Fatal(err)
	}
	env.Get(t, "/api/users/me", u.AccessToken).Expect(t, http.StatusOK, "")
}
