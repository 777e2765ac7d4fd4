package apptest

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
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

// Login opens a new session for u and stores its tokens in u.
func (e *Env) Login(t testing.TB, u *User) *User {
	t.Helper()
	res := e.Do(t, Request{Method: http.MethodPost, Path: "/api/auth/login", Body: map[string]string{
		"email": u.Email, "password": Password,
	}}).Expect(t, http.StatusOK, "")
	var data struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	res.Data(t, &data)
	u.AccessToken, u.RefreshToken = data.AccessToken, data.RefreshToken
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
