package token_test

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tenantry/tenantry/token"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestIssueAndParse(t *testing.T) {
	t.Parallel()
	iss := token.NewIssuer(key, 15*time.Minute, 7*24*time.Hour)
	now := time.Now()
	raw, exp, err := iss.Issue(token.Access, "user-1", "session-1", "jti-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if got := exp.Sub(now); got != 15*time.Minute {
		t.Fatalf("access expiry in %v", got)
	}
	c, err := iss.Parse(raw, token.Access)
	if err != nil || c.UserID != "user-1" || c.SessionID != "session-1" || c.ID != "jti-1" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	if _, err := iss.Parse(raw, token.Refresh); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("an access token was accepted as a refresh token: %v", err)
	}
	refresh, _, _ := iss.Issue(token.Refresh, "user-1", "session-1", "jti-2", now)
	if _, err := iss.Parse(refresh, token.Access); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("a refresh token was accepted as an access token: %v", err)
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	iss := token.NewIssuer(key, time.Minute, time.Hour)
	raw, _, _ := iss.Issue(token.Access, "u", "s", "j", time.Now().Add(-2*time.Minute))
	if _, err := iss.Parse(raw, token.Access); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("Parse(expired) = %v", err)
	}
}

func TestForgeries(t *testing.T) {
	t.Parallel()
	iss := token.NewIssuer(key, time.Minute, time.Hour)
	good, _, _ := iss.Issue(token.Access, "u", "s", "j", time.Now())
	parts := strings.Split(good, ".")

	otherKey, _, _ := token.NewIssuer([]byte("another-key-another-key-another-k"), time.Minute, time.Hour).Issue(token.Access, "u", "s", "j", time.Now())

	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{
		"iss": "tenantry", "sub": "u", "sid": "s", "jti": "j", "type": "access",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
	})
	hs512Raw, _ := hs512.SignedString(key)

	noExp := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "tenantry", "sub": "u", "sid": "s", "jti": "j", "type": "access"})
	noExpRaw, _ := noExp.SignedString(key)

	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"tenantry","sub":"admin","sid":"s","jti":"j","type":"access","exp":9999999999}`)) + "." + parts[2]

	for name, raw := range map[string]string{
		"other key":       otherKey,
		"alg none":        none,
		"other algorithm": hs512Raw,
		"no expiry":       noExpRaw,
		"tampered claims": tampered,
		"garbage":         "not.a.token",
		"empty":           "",
	} {
		if _, err := iss.Parse(raw, token.Access); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: Parse = %v, want ErrInvalid", name, err)
		}
	}
}

// Ensure a token verified once, and so remembered, is still refused as the
// other kind, and still expires.
func TestRememberedTokenStillChecked(t *testing.T) {
	t.Parallel()
	iss := token.NewIssuer(key, time.Minute, time.Hour)
	// Expiry is in whole seconds: this token expires at the start of the
	// second after next.
	now := time.Now()
	issued := now.Add(-time.Minute + 2*time.Second - time.Duration(now.Nanosecond()))
	raw, exp, err := iss.Issue(token.Access, "u", "s", "j", issued)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if c, err := iss.Parse(raw, token.Access); err != nil || c.UserID != "u" {
			t.Fatalf("Parse = %+v, %v", c, err)
		}
		if _, err := iss.Parse(raw, token.Refresh); !errors.Is(err, token.ErrInvalid) {
			t.Fatalf("a remembered access token was accepted as a refresh token: %v", err)
		}
	}
	time.Sleep(time.Until(exp))
	if _, err := iss.Parse(raw, token.Access); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("Parse after expiry = %v, want ErrExpired", err)
	}
}

// Ensure the cache of verified tokens stays bounded and keeps serving the
// tokens in use while many others pass through it.
func TestManyTokens(t *testing.T) {
	t.Parallel()
	iss := token.NewIssuer(key, time.Minute, time.Hour)
	now := time.Now()
	hot, _, _ := iss.Issue(token.Access, "hot", "s", "j", now)
	for i := range 20000 {
		raw, _, _ := iss.Issue(token.Access, "u"+strconv.Itoa(i), "s", "j", now)
		if c, err := iss.Parse(raw, token.Access); err != nil || c.UserID != "u"+strconv.Itoa(i) {
			t.Fatalf("token %d: Parse = %+v, %v", i, c, err)
		}
		if c, err := iss.Parse(hot, token.Access); err != nil || c.UserID != "hot" {
			t.Fatalf("hot token after %d others: Parse = %+v, %v", i, c, err)
		}
	}
}

// Ensure a token issued on someone's behalf names its actor, as RFC 8693's
// act claim, and expires when it says; and that the claim cannot ride on a
// refresh token.
func TestActingToken(t *testing.T) {
	t.Parallel()
	iss := token.NewIssuer(key, time.Hour, 7*24*time.Hour)
	now := time.Now()
	raw, err := iss.IssueActing("user-1", "session-1", "jti-1", "admin-1", now, now.Add(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Parse(raw, token.Access)
	if err != nil || c.UserID != "user-1" || c.ActorID != "admin-1" || c.ExpiresAt.Sub(now) > 15*time.Minute {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if !strings.Contains(string(payload), `"act":{"sub":"admin-1"}`) {
		t.Fatalf("no act claim in %s", payload)
	}
	own, _, _ := iss.Issue(token.Access, "user-1", "session-1", "jti-2", now)
	if c, _ := iss.Parse(own, token.Access); c.ActorID != "" {
		t.Fatalf("the user's own token names an actor: %+v", c)
	}
	if _, err := iss.IssueActing("user-1", "session-1", "jti-3", "", now, now.Add(time.Minute)); err == nil {
		t.Fatal("an acting token without an actor was issued")
	}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "tenantry", "sub": "user-1", "jti": "j", "sid": "s", "type": "refresh", "act": map[string]string{"sub": "admin-1"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString(key)
	if _, err := iss.Parse(forged, token.Refresh); !errors.Is(err, token.ErrInvalid) {
		t.Fatalf("a refresh token naming an actor was accepted: %v", err)
	}
}
