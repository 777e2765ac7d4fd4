package ssotest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// EntraUser is a person in an Entra directory.
type EntraUser struct {
	ObjectID string
	Email    string
	// EmailOwned says the directory owns the address's domain (xms_edov).
	EmailOwned bool
	GivenName  string
	FamilyName string
	Groups     []string
	// Overage leaves the groups out of the token, as Entra does past 200,
	// naming Microsoft Graph as where to find them.
	Overage bool
	// IssueFrom, when set, is another directory whose issuer and tid the
	// token carries: what a token minted for another tenant of a
	// multi-tenant application looks like. Entra signs both with the
	// same keys.
	IssueFrom string
}

// Entra is a provider shaped like Microsoft Entra ID at an authority.
type Entra struct {
	Authority    string
	ClientID     string
	ClientSecret string
	key          *rsa.PrivateKey
	kid          string

	mu      sync.Mutex
	domains map[string]string // domain -> directory
	queue   []*EntraUser
	codes   map[string]*entraGrant
	tokens  map[string]*EntraUser // access token -> user, for Graph
	issued  []string
	// GraphFails makes Microsoft Graph answer 503.
	GraphFails bool
}

// Issued returns every token the provider handed out.
func (e *Entra) Issued() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.issued...)
}

// SetGraphFails makes Microsoft Graph fail, or work again.
func (e *Entra) SetGraphFails(fail bool) {
	e.mu.Lock()
	e.GraphFails = fail
	e.mu.Unlock()
}

type entraGrant struct {
	directory, nonce, challenge, redirectURI string
	user                                     *EntraUser
}

// NewEntra starts an Entra-shaped provider on loopback.
func NewEntra(t testing.TB) *Entra {
	t.Helper()
	e := &Entra{ClientID: "00000000-aaaa-bbbb-cccc-" + randomHex(6), ClientSecret: randomHex(16), key: NewKey(t), kid: randomHex(8),
		domains: map[string]string{}, codes: map[string]*entraGrant{}, tokens: map[string]*EntraUser{}}
	srv := httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(srv.Close)
	e.Authority = srv.URL
	return e
}

// AddDomain makes a verified domain of a directory name it at the
// authority.
func (e *Entra) AddDomain(domain, directory string) {
	e.mu.Lock()
	e.domains[domain] = directory
	e.mu.Unlock()
}

// Queue makes u the next person to sign in.
func (e *Entra) Queue(u *EntraUser) {
	e.mu.Lock()
	e.queue = append(e.queue, u)
	e.mu.Unlock()
}

// Issuer is a directory's issuer.
func (e *Entra) Issuer(directory string) string { return e.Authority + "/" + directory + "/v2.0" }

func (e *Entra) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == "/discovery/v2.0/keys":
		e.keys(w)
	case r.URL.Path == "/v1.0/me/getMemberObjects":
		e.graph(w, r)
	case r.URL.Path == "/v1.0/me":
		e.me(w, r)
	case len(parts) == 4 && parts[1] == "v2.0" && parts[2] == ".well-known":
		e.discovery(w, parts[0])
	case len(parts) == 4 && parts[1] == "oauth2" && parts[3] == "authorize":
		e.authorize(w, r, parts[0])
	case len(parts) == 4 && parts[1] == "oauth2" && parts[3] == "token":
		e.token(w, r, parts[0])
	default:
		http.NotFound(w, r)
	}
}

func (e *Entra) directory(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.domains[name]; ok {
		return d
	}
	return name
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (e *Entra) discovery(w http.ResponseWriter, name string) {
	dir := e.directory(name)
	base := e.Authority + "/" + dir
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": e.Issuer(dir), "authorization_endpoint": base + "/oauth2/v2.0/authorize", "token_endpoint": base + "/oauth2/v2.0/token",
		"jwks_uri": e.Authority + "/discovery/v2.0/keys", "userinfo_endpoint": e.Authority + "/oidc/userinfo",
		"end_session_endpoint": base + "/oauth2/v2.0/logout", "id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (e *Entra) keys(w http.ResponseWriter) {
	pub := e.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "kid": e.kid, "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (e *Entra) authorize(w http.ResponseWriter, r *http.Request, dir string) {
	q := r.URL.Query()
	if q.Get("client_id") != e.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	e.mu.Lock()
	if len(e.queue) == 0 {
		e.mu.Unlock()
		http.Error(w, "nobody to sign in", http.StatusBadRequest)
		return
	}
	u := e.queue[0]
	e.queue = e.queue[1:]
	code := randomHex(16)
	e.codes[code] = &entraGrant{directory: dir, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), user: u}
	e.mu.Unlock()
	back, _ := url.Parse(q.Get("redirect_uri"))
	v := back.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (e *Entra) token(w http.ResponseWriter, r *http.Request, dir string) {
	readForm(r)
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != e.ClientID || secret != e.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	e.mu.Lock()
	g := e.codes[r.PostForm.Get("code")]
	delete(e.codes, r.PostForm.Get("code"))
	e.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if g == nil || g.directory != dir || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge || r.PostForm.Get("redirect_uri") != g.redirectURI {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	}
	u := g.user
	tid := dir
	if u.IssueFrom != "" {
		tid = u.IssueFrom
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": e.Issuer(tid), "tid": tid, "oid": u.ObjectID, "sub": "pairwise-" + u.ObjectID, "aud": e.ClientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": g.nonce, "ver": "2.0",
		"preferred_username": u.Email, "email": u.Email, "given_name": u.GivenName, "family_name": u.FamilyName,
		"name": strings.TrimSpace(u.GivenName + " " + u.FamilyName),
	}
	if u.EmailOwned {
		claims["xms_edov"] = true
	}
	if u.Overage {
		claims["_claim_names"] = map[string]string{"groups": "src1"}
		claims["_claim_sources"] = map[string]any{"src1": map[string]string{"endpoint": e.Authority + "/v1.0/users/" + u.ObjectID + "/getMemberObjects"}}
	} else if u.Groups != nil {
		claims["groups"] = u.Groups
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = e.kid
	idToken, err := tok.SignedString(e.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	access, refresh := "entra-access-"+randomHex(16), "entra-refresh-"+randomHex(16)
	e.mu.Lock()
	e.tokens[access] = u
	e.issued = append(e.issued, access, refresh, idToken)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": access,
		"refresh_token": refresh, "id_token": idToken})
}

func (e *Entra) graph(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	u := e.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	fails := e.GraphFails
	e.mu.Unlock()
	switch {
	case fails:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
	case u == nil:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "InvalidAuthenticationToken"})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"value": u.Groups})
	}
}

func (e *Entra) me(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	u := e.tokens[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
	e.mu.Unlock()
	if u == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "InvalidAuthenticationToken"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": u.ObjectID, "mail": u.Email, "givenName": u.GivenName, "jobTitle": "Engineer"})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const digits = "0123456789abcdef"
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
