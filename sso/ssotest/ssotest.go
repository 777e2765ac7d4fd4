// Package ssotest runs OpenID providers in a test's process: a generic one
// (github.com/oauth2-proxy/mockoidc) whose ID tokens a test may tamper
// with, and one shaped like Microsoft Entra ID (an issuer per directory,
// keys shared by every directory, tid and oid claims, groups and their
// overage, Microsoft Graph), both speaking real HTTP on loopback.
package ssotest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// Provider is a generic OpenID provider.
type Provider struct {
	Mock *mockoidc.MockOIDC

	mu     sync.Mutex
	tamper func(idToken string) string
	// spent is the time the provider spent answering, since the last
	// TimeSpent.
	spent time.Duration
}

// TimeSpent returns how long the provider spent answering requests since
// it was last asked, so that a measurement can leave the provider's own
// time out.
func (p *Provider) TimeSpent() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.spent
	p.spent = 0
	return d
}

// NewProvider starts a provider on loopback, stopped when the test ends.
func NewProvider(t testing.TB) *Provider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Mock: m}
	if err := m.AddMiddleware(p.tamperTokens); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return p
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.Mock.Issuer() }

// Queue makes u the person who signs in next.
func (p *Provider) Queue(u *User) { p.Mock.QueueUser(u) }

// Tamper replaces the ID token of the next token responses with what fn
// makes of it; nil stops tampering.
func (p *Provider) Tamper(fn func(idToken string) string) {
	p.mu.Lock()
	p.tamper = fn
	p.mu.Unlock()
}

// PublicKeyPEM is the provider's signing key's public half, as an attacker
// would download it.
func (p *Provider) PublicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(p.Mock.Keypair.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// KeyID is the id of the provider's signing key.
func (p *Provider) KeyID() string {
	kid, _ := p.Mock.Keypair.KeyID()
	return kid
}

func (p *Provider) tamperTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			p.mu.Lock()
			p.spent += time.Since(start)
			p.mu.Unlock()
		}()
		p.mu.Lock()
		fn := p.tamper
		p.mu.Unlock()
		if fn == nil || r.URL.Path != mockoidc.TokenEndpoint {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err == nil {
			if raw, ok := body["id_token"].(string); ok {
				body["id_token"] = fn(raw)
			}
		}
		out, _ := json.Marshal(body)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(out)
	})
}

// User is a person at a provider, with the claims its ID token carries.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
	Groups        []string
	// Extra claims are added to (or replace) the ID token's.
	Extra map[string]any
}

// ID implements mockoidc.User.
func (u *User) ID() string { return u.Subject }

// Userinfo implements mockoidc.User.
func (u *User) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.Subject, "email": u.Email, "given_name": u.GivenName, "family_name": u.FamilyName})
}

// Claims implements mockoidc.User.
func (u *User) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	m := jwt.MapClaims{
		"iss": base.Issuer, "sub": base.Subject, "aud": []string(base.Audience), "iat": base.IssuedAt.Unix(),
		"exp": base.ExpiresAt.Unix(), "nbf": base.NotBefore.Unix(), "jti": base.ID,
		"email": u.Email, "email_verified": u.EmailVerified, "given_name": u.GivenName, "family_name": u.FamilyName,
		"name": strings.TrimSpace(u.GivenName + " " + u.FamilyName),
	}
	if base.Nonce != "" {
		m["nonce"] = base.Nonce
	}
	if u.Groups != nil {
		m["groups"] = u.Groups
	}
	for k, v := range u.Extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m, nil
}

// Payload decodes a JWT's claims without checking anything.
func Payload(raw string) map[string]any {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// Resign signs a token's claims again with another key, under the same
// key id: a forgery the provider's key must expose.
func Resign(raw string, key *rsa.PrivateKey, kid string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(Payload(raw)))
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// AlgNone strips a token's signature and declares it unsigned.
func AlgNone(raw string) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	parts := strings.Split(raw, ".")
	return header + "." + parts[1] + "."
}

// HS256WithKey signs a token's claims with HMAC-SHA256 keyed by the
// provider's public key, the classic confusion attack.
func HS256WithKey(raw string, publicPEM []byte, kid string) string {
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
	parts := strings.Split(raw, ".")
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + parts[1]
	mac := hmac.New(sha256.New, publicPEM)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// NewKey returns a fresh RSA key.
func NewKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// readForm reads a form body (for the token endpoint) without keeping it.
func readForm(r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	_ = r.ParseForm()
}
