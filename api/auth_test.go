package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

type userJSON struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	IsActive  bool   `json:"is_active"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func post(path string, body any) apptest.Request {
	return apptest.Request{Method: http.MethodPost, Path: path, Body: body}
}

func TestRegister(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)

		res := env.Do(t, post("/api/auth/register", map[string]string{
			"first_name": "  Ada ", "last_name": "Lovelace", "email": "  Ada.Lovelace@Example.COM ", "password": "analytical1",
		})).Expect(t, 201, "")
		var data struct {
			User userJSON `json:"user"`
		}
		res.Data(t, &data)
		u := data.User
		if u.Email != "ada.lovelace@example.com" || u.FirstName != "Ada" || !u.IsActive || len(u.ID) != 36 {
			t.Fatalf("user = %+v", u)
		}
		if !strings.HasSuffix(u.CreatedAt, "Z") {
			t.Errorf("created_at %q is not UTC with Z", u.CreatedAt)
		}
		if strings.Contains(string(res.Body), "password") || strings.Contains(string(res.Body), "argon2") {
			t.Fatalf("the response mentions the password: %s", res.Body)
		}

		t.Run("duplicate email in another case", func(t *testing.T) {
			env.Do(t, post("/api/auth/register", map[string]string{
				"first_name": "A", "last_name": "L", "email": "ADA.LOVELACE@example.com", "password": "analytical1",
			})).Expect(t, 409, "CONFLICT")
		})

		valid := map[string]any{"first_name": "A", "last_name": "B", "email": "a@example.com", "password": "abcdefg1"}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range valid {
				m[kk] = vv
			}
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		for _, tt := range []struct {
			name  string
			body  map[string]any
			field string
		}{
			{"invalid email", with("email", "not-an-email"), "email"},
			{"email without domain dot", with("email", "a@localhost"), "email"},
			{"email too long", with("email", strings.Repeat("a", 250)+"@example.com"), "email"},
			{"short password", with("password", "ab1"), "password"},
			{"password without digit", with("password", "abcdefgh"), "password"},
			{"password without letter", with("password", "12345678"), "password"},
			{"password over 128 characters", with("password", strings.Repeat("a1", 65)), "password"},
			{"blank first name", with("first_name", "   "), "first_name"},
			{"long last name", with("last_name", strings.Repeat("x", 101)), "last_name"},
			{"missing email", with("email", nil), "email"},
			{"unknown field", with("is_admin", true), "is_admin"},
			{"wrong type", with("password", 12345678), "password"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := env.Do(t, post("/api/auth/register", tt.body)).Expect(t, 400, "VALIDATION_ERROR")
				var body struct {
					Error struct {
						Details map[string][]string `json:"details"`
					} `json:"error"`
				}
				res.Decode(t, &body)
				if len(body.Error.Details[tt.field]) == 0 {
					t.Fatalf("details do not name %s: %s", tt.field, res.Body)
				}
			})
		}
		t.Run("malformed JSON", func(t *testing.T) {
			env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/register", Body: `{"email":`, ContentType: "application/json"}).Expect(t, 400, "BAD_REQUEST")
		})
		t.Run("not JSON", func(t *testing.T) {
			env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/register", Body: `email=a`, ContentType: "application/x-www-form-urlencoded"}).Expect(t, 415, "UNSUPPORTED_MEDIA_TYPE")
		})
		t.Run("no body", func(t *testing.T) {
			env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/register"}).Expect(t, 400, "BAD_REQUEST")
		})
	})
}

func TestConcurrentRegistrationsOfOneEmail(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		var mu sync.Mutex
		statuses := map[int]int{}
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				res := env.Do(t, post("/api/auth/register", map[string]string{
					"first_name": "Race", "last_name": "Condition", "email": "race@example.com", "password": "abcdefg1",
				}))
				mu.Lock()
				statuses[res.Status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if statuses[201] != 1 || statuses[409] != 9 {
			t.Fatalf("statuses = %v, want one 201 and nine 409", statuses)
		}
	})
}

type loginJSON struct {
	AccessToken  string   `json:"access_token"`
	RefreshToken string   `json:"refresh_token"`
	TokenType    string   `json:"token_type"`
	ExpiresIn    int      `json:"expires_in"`
	User         userJSON `json:"user"`
	Tenants      []struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		DatabaseName string `json:"database_name"`
		Role         string `json:"role"`
	} `json:"tenants"`
}

func TestLogin(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		owner := env.SignUp(t, "Owner")
		kept := env.CreateTenant(t, owner, "Kept")
		dropped := env.CreateTenant(t, owner, "Dropped")
		env.Do(t, apptest.Request{Method: "DELETE", Path: "/api/tenants/" + dropped, Token: owner.AccessToken}).Expect(t, 200, "")

		res := env.Do(t, post("/api/auth/login", map[string]string{"email": strings.ToUpper(owner.Email), "password": apptest.Password})).Expect(t, 200, "")
		var got loginJSON
		res.Data(t, &got)
		if got.AccessToken == "" || got.RefreshToken == "" || got.TokenType != "Bearer" || got.ExpiresIn != 900 || got.User.Email != owner.Email {
			t.Fatalf("login = %s", res.Body)
		}
		if len(got.Tenants) != 1 || got.Tenants[0].ID != kept || got.Tenants[0].Role != "admin" || got.Tenants[0].DatabaseName == "" {
			t.Fatalf("tenants = %+v, want only the active one", got.Tenants)
		}

		unknown := env.Do(t, post("/api/auth/login", map[string]string{"email": "nobody@example.com", "password": apptest.Password})).Expect(t, 401, "INVALID_CREDENTIALS")
		wrong := env.Do(t, post("/api/auth/login", map[string]string{"email": owner.Email, "password": "Wrong-pass-1"})).Expect(t, 401, "INVALID_CREDENTIALS")
		if string(unknown.Body) != string(wrong.Body) {
			t.Fatalf("unknown email and wrong password answer differently:\n%s\n%s", unknown.Body, wrong.Body)
		}
		env.Do(t, post("/api/auth/login", map[string]string{"email": "not-an-email", "password": "x"})).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, post("/api/auth/login", map[string]string{"email": owner.Email, "password": ""})).Expect(t, 400, "VALIDATION_ERROR")
		env.Do(t, post("/api/auth/login", map[string]any{"email": owner.Email, "password": "x", "remember": true})).Expect(t, 400, "VALIDATION_ERROR")
	})
}

func TestInactiveAccounts(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Leaver")
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 200, "")

		if _, err := env.App.Accounts.SetActive(context.Background(), u.Email, false); err != nil {
			t.Fatal(err)
		}
		// The live token stops working at once.
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 401, "")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: u.RefreshToken}).Expect(t, 401, "TOKEN_REVOKED")
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": apptest.Password})).Expect(t, 403, "ACCOUNT_INACTIVE")
		// Without the right password the account's state is not revealed.
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "Wrong-pass-1"})).Expect(t, 401, "INVALID_CREDENTIALS")

		if _, err := env.App.Accounts.SetActive(context.Background(), u.Email, true); err != nil {
			t.Fatal(err)
		}
		// Reactivation does not bring the old sessions back.
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		env.Login(t, u)
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 200, "")
	})
}

func TestDeactivatedUserWithLiveSessionIsRefused(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Suspended")
		// Deactivating the row directly (as an operator's SQL would) leaves
		// the session standing; the token must still be refused.
		if _, err := env.App.Engines.Control.Exec(context.Background(), "UPDATE users SET is_active = $2 WHERE id = $1", u.ID, false); err != nil {
			t.Fatal(err)
		}
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 403, "ACCOUNT_INACTIVE")
	})
}

func TestRefreshRotationAndReuseDetection(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Rotator")
		first := u.RefreshToken

		// As the original: the refresh token in the Authorization header.
		res := env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: first}).Expect(t, 200, "")
		var second loginJSON
		res.Data(t, &second)
		if second.RefreshToken == "" || second.RefreshToken == first || second.AccessToken == "" || second.TokenType != "Bearer" {
			t.Fatalf("refresh = %s", res.Body)
		}
		env.Get(t, "/api/users/me", second.AccessToken).Expect(t, 200, "")

		// Or in the body.
		res = env.Do(t, post("/api/auth/refresh", map[string]string{"refresh_token": second.RefreshToken})).Expect(t, 200, "")
		var third loginJSON
		res.Data(t, &third)

		// The first token was already used: presenting it again is a theft
		// signal, and the whole session goes.
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: first}).Expect(t, 401, "TOKEN_REVOKED")
		env.Get(t, "/api/users/me", third.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		env.Do(t, post("/api/auth/refresh", map[string]string{"refresh_token": third.RefreshToken})).Expect(t, 401, "TOKEN_REVOKED")

		// Other sessions of the user are untouched.
		other := env.Login(t, &apptest.User{ID: u.ID, Email: u.Email})
		env.Get(t, "/api/users/me", other.AccessToken).Expect(t, 200, "")

		// An access token is not a refresh token, and vice versa.
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: other.AccessToken}).Expect(t, 401, "UNAUTHORIZED")
		env.Get(t, "/api/users/me", other.RefreshToken).Expect(t, 401, "UNAUTHORIZED")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh"}).Expect(t, 401, "UNAUTHORIZED")
		env.Do(t, post("/api/auth/refresh", map[string]string{"refresh_token": "garbage"})).Expect(t, 401, "UNAUTHORIZED")
	})
}

func TestLogoutRevokesBothTokens(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Leaving")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/logout", Token: u.AccessToken}).Expect(t, 200, "")
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 401, "TOKEN_REVOKED")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: u.RefreshToken}).Expect(t, 401, "TOKEN_REVOKED")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/logout", Token: u.AccessToken}).Expect(t, 401, "TOKEN_REVOKED")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/logout"}).Expect(t, 401, "UNAUTHORIZED")
	})
}

func TestAuthorizationHeaderErrors(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.SignUp(t, "Header")
		for name, header := range map[string]string{
			"missing":        "",
			"no scheme":      u.AccessToken,
			"basic":          "Basic dXNlcjpwYXNz",
			"two parts":      "Bearer a b",
			"empty token":    "Bearer ",
			"garbage":        "Bearer not.a.jwt",
			"truncated":      "Bearer " + u.AccessToken[:len(u.AccessToken)-3],
			"refresh as one": "Bearer " + u.RefreshToken,
		} {
			h := http.Header{}
			if header != "" {
				h.Set("Authorization", header)
			}
			res := env.Do(t, apptest.Request{Method: "GET", Path: "/api/users/me", Header: h})
			if res.Status != 401 || res.ErrorCode(t) != "UNAUTHORIZED" {
				t.Errorf("%s: %d %s", name, res.Status, res.Body)
			}
		}
		h := http.Header{"Authorization": {"bearer " + u.AccessToken}}
		env.Do(t, apptest.Request{Method: "GET", Path: "/api/users/me", Header: h}).Expect(t, 200, "")
	})
}

func TestExpiredAccessToken(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		// Token times have one-second precision, so a two-second lifetime
		// leaves a fresh token at least one second to live.
		cfg.AccessTokenTTL = config.Seconds(2 * time.Second)
		env := apptest.Start(t, cfg)
		u := env.SignUp(t, "Slow")
		time.Sleep(2100 * time.Millisecond)
		env.Get(t, "/api/users/me", u.AccessToken).Expect(t, 401, "TOKEN_EXPIRED")
		// The session itself is fine: the refresh token gets a new one.
		res := env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/refresh", Token: u.RefreshToken}).Expect(t, 200, "")
		var got loginJSON
		res.Data(t, &got)
		if got.ExpiresIn != 2 {
			t.Errorf("expires_in = %d, want 2", got.ExpiresIn)
		}
		env.Get(t, "/api/users/me", got.AccessToken).Expect(t, 200, "")
	})
}

// failedLogins is the failure count on record for an email, registered or
// not; an email with no record has none.
func failedLogins(t *testing.T, env *apptest.Env, email string) int {
	t.Helper()
	n, _ := env.LoginFailures(t, email)
	return n
}

func TestLockout(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.LoginLockout = 2 * time.Second
		env := apptest.Start(t, cfg)
		u := env.Register(t, "Locked")
		wrong := map[string]string{"email": u.Email, "password": "Wrong-pass-1"}
		right := map[string]string{"email": u.Email, "password": apptest.Password}

		for range 4 {
			env.Do(t, post("/api/auth/login", wrong)).Expect(t, 401, "INVALID_CREDENTIALS")
		}
		// A success resets the count.
		env.Do(t, post("/api/auth/login", right)).Expect(t, 200, "")
		if n := failedLogins(t, env, u.Email); n != 0 {
			t.Fatalf("failed_logins = %d after a success", n)
		}
		for range 5 {
			env.Do(t, post("/api/auth/login", wrong)).Expect(t, 401, "INVALID_CREDENTIALS")
		}
		res := env.Do(t, post("/api/auth/login", right)).Expect(t, 423, "ACCOUNT_LOCKED")
		if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
			t.Fatalf("Retry-After = %q", res.Header.Get("Retry-After"))
		}
		time.Sleep(2100 * time.Millisecond)
		env.Do(t, post("/api/auth/login", right)).Expect(t, 200, "")
		if n := failedLogins(t, env, u.Email); n != 0 {
			t.Fatalf("failed_logins = %d after the lock ran out and a success", n)
		}
	})
}

func TestParallelFailuresNeverExceedTheLimit(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Target")
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				res := env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "Wrong-pass-1"}))
				if res.Status != 401 && res.Status != 423 {
					t.Errorf("parallel failure answered %d: %s", res.Status, res.Body)
				}
			})
		}
		wg.Wait()
		if n := failedLogins(t, env, u.Email); n != 5 {
			t.Fatalf("failed_logins = %d after 20 parallel failures, want exactly the limit 5", n)
		}
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": apptest.Password})).Expect(t, 423, "ACCOUNT_LOCKED")
	})
}

// Ensure an email nobody registered locks out after as many failures as a
// registered one, with the same answer, so that repeated attempts do not
// tell which addresses have accounts.
func TestUnknownEmailLocksOutLikeARegisteredOne(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Known")
		unknown := "Nobody.Registered@Example.com"
		stored := strings.ToLower(unknown)
		attempt := func(email, pw string) *apptest.Response {
			return env.Do(t, post("/api/auth/login", map[string]string{"email": email, "password": pw}))
		}

		for i := range 5 {
			a := attempt(unknown, "Wrong-pass-1").Expect(t, 401, "INVALID_CREDENTIALS")
			b := attempt(u.Email, "Wrong-pass-1").Expect(t, 401, "INVALID_CREDENTIALS")
			if string(a.Body) != string(b.Body) {
				t.Fatalf("failure %d answers differently:\n%s\n%s", i+1, a.Body, b.Body)
			}
			if n, m := failedLogins(t, env, stored), failedLogins(t, env, u.Email); n != i+1 || m != i+1 {
				t.Fatalf("after %d failures each: %d on record for the unknown email, %d for the registered one", i+1, n, m)
			}
		}
		// Both are now locked, whatever the password.
		a := attempt(unknown, apptest.Password).Expect(t, 423, "ACCOUNT_LOCKED")
		b := attempt(u.Email, apptest.Password).Expect(t, 423, "ACCOUNT_LOCKED")
		if string(a.Body) != string(b.Body) {
			t.Fatalf("locked answers differ:\n%s\n%s", a.Body, b.Body)
		}
		for _, res := range []*apptest.Response{a, b} {
			if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 900 {
				t.Fatalf("Retry-After = %q, want at most the 15 minute lockout", res.Header.Get("Retry-After"))
			}
		}
		// Attempts while locked are not counted.
		attempt(unknown, "Wrong-pass-1").Expect(t, 423, "ACCOUNT_LOCKED")
		if n := failedLogins(t, env, stored); n != 5 {
			t.Fatalf("%d failures on record for the locked unknown email, want 5", n)
		}
	})
}

// Ensure a success deletes the failures on record, and that an address with
// none is left with no record either.
func TestSuccessClearsFailures(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Forgetful")
		for range 3 {
			env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "Wrong-pass-1"})).Expect(t, 401, "INVALID_CREDENTIALS")
		}
		if n, found := env.LoginFailures(t, u.Email); !found || n != 3 {
			t.Fatalf("failures on record = %d (row %v), want 3", n, found)
		}
		env.Login(t, u)
		if _, found := env.LoginFailures(t, u.Email); found {
			t.Fatal("a success left the failures row in place")
		}
		env.Login(t, u)
		if _, found := env.LoginFailures(t, u.Email); found {
			t.Fatal("a success with no failures on record wrote a row")
		}
	})
}

// Ensure the periodic cleanup deletes failures nobody will act on, those of
// unknown addresses included.
func TestCleanupPrunesStaleLoginFailures(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		// Long enough that the row is surely there when first looked
		// for, however slow the machine (the race detector, a loaded
		// CI host), and short enough to see it pruned soon after.
		cfg.LoginLockout = 5 * time.Second
		// The job queue refuses periods under a second.
		cfg.MaintenanceInterval = time.Second
		env := apptest.Start(t, cfg)
		email := "ghost.cleanup@example.com"
		env.Do(t, post("/api/auth/login", map[string]string{"email": email, "password": "Wrong-pass-1"})).Expect(t, 401, "INVALID_CREDENTIALS")
		if _, found := env.LoginFailures(t, email); !found {
			t.Fatal("a failure for an unknown email left no row")
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, found := env.LoginFailures(t, email); !found {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the cleanup job never deleted a stale failure row")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestRateLimits(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		cfg := apptest.Config(t, shape)
		cfg.RateLimitLogin, cfg.RateLimitRegister = "3/m", "2/m"
		env := apptest.Start(t, cfg)
		for range 3 {
			env.Do(t, post("/api/auth/login", map[string]string{"email": "x@example.com", "password": "x"}))
		}
		res := env.Do(t, post("/api/auth/login", map[string]string{"email": "x@example.com", "password": "x"})).Expect(t, 429, "RATE_LIMITED")
		if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("Retry-After = %q", res.Header.Get("Retry-After"))
		}
		for i := range 2 {
			env.Do(t, post("/api/auth/register", map[string]string{"first_name": "R", "last_name": "L", "email": "r" + strconv.Itoa(i) + "@example.com", "password": "abcdefg1"})).Expect(t, 201, "")
		}
		env.Do(t, post("/api/auth/register", map[string]string{"first_name": "R", "last_name": "L", "email": "r9@example.com", "password": "abcdefg1"})).Expect(t, 429, "RATE_LIMITED")
	})
}

func TestLegacyBcryptHashIsUpgradedAtLogin(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Imported")
		legacy, err := bcrypt.GenerateFromPassword([]byte("TestPass123"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		db := env.App.Engines.Control
		ctx := context.Background()
		if _, err := db.Exec(ctx, "UPDATE users SET password_hash = $2 WHERE id = $1", u.ID, "$2b$"+string(legacy)[4:]); err != nil {
			t.Fatal(err)
		}
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "TestPass123"})).Expect(t, 200, "")
		var hash string
		if err := db.QueryRow(ctx, "SELECT password_hash FROM users WHERE id = $1", u.ID).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") {
			t.Fatalf("hash after login = %.12s..., want argon2id", hash)
		}
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": "TestPass123"})).Expect(t, 200, "")
	})
}

func TestAreaHealth(t *testing.T) {
	t.Parallel()
	env := apptest.StartShape(t, config.Embedded)
	for _, p := range []string{"/api/auth/health", "/api/users/health", "/api/tenants/health"} {
		env.Get(t, p, "").Expect(t, 200, "").Data(t, nil)
	}
}
