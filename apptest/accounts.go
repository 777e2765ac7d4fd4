package apptest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tenantry/tenantry/sqldb"
)

// Password is the password of every account the helpers register.
const Password = "Correct-horse-7"

var userSeq atomic.Int64 //nolint:gochecknoglobals // unique test emails across parallel tests

// User is a registered account and the tokens of one of its sessions.
type User struct {
	ID           string
	Email        string
	AccessToken  string
	RefreshToken string
}

// Register creates an account with a unique email whose local part starts
// with name.
func (e *Env) Register(t testing.TB, name string) *User {
	t.Helper()
	email := fmt.Sprintf("%s.%d@example.com", strings.ToLower(name), userSeq.Add(1))
	res := e.Do(t, Request{Method: http.MethodPost, Path: "/api/auth/register", Body: map[string]string{
		"first_name": name, "last_name": "Tester", "email": email, "password": Password,
	}}).Expect(t, http.StatusCreated, "")
	var data struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	res.Data(t, &data)
	return &User{ID: data.User.ID, Email: email}
}

// Login opens a new session for u and stores its tokens, and its id when
// u came without one, in u.
func (e *Env) Login(t testing.TB, u *User) *User {
	t.Helper()
	res := e.Do(t, Request{Method: http.MethodPost, Path: "/api/auth/login", Body: map[string]string{
		"email": u.Email, "password": Password,
	}}).Expect(t, http.StatusOK, "")
	var data struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		User         struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	res.Data(t, &data)
	u.AccessToken, u.RefreshToken = data.AccessToken, data.RefreshToken
	if u.ID == "" {
		u.ID = data.User.ID
	}
	return u
}

// SignUp registers and logs in a new user.
func (e *Env) SignUp(t testing.TB, name string) *User {
	t.Helper()
	return e.Login(t, e.Register(t, name))
}

// CreateTenant creates a tenant as u and returns its id.
func (e *Env) CreateTenant(t testing.TB, u *User, name string) string {
	t.Helper()
	res := e.Do(t, Request{Method: http.MethodPost, Path: "/api/tenants", Token: u.AccessToken, Body: map[string]string{"name": name}}).
		Expect(t, http.StatusCreated, "")
	var data struct {
		ID string `json:"id"`
	}
	res.Data(t, &data)
	return data.ID
}

// AddMember adds member to the tenant with role, as admin.
func (e *Env) AddMember(t testing.TB, admin *User, tenantID string, member *User, role string) {
	t.Helper()
	e.Do(t, Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/users", Token: admin.AccessToken,
		Body: map[string]string{"user_id": member.ID, "role": role}}).Expect(t, http.StatusCreated, "")
}

// LoginFailures reads the failed sign-ins on record for an email,
// registered or not, and whether it has a record at all.
func (e *Env) LoginFailures(t testing.TB, email string) (failures int, found bool) {
	t.Helper()
	err := e.App.Engines.Control.QueryRow(context.Background(), `SELECT failures FROM login_failures WHERE email = $1`, email).Scan(&failures)
	if errors.Is(err, sqldb.ErrNoRows) {
		return 0, false
	} else if err != nil {
		t.Fatal(err)
	}
	return failures, true
}
