package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/sqldb"
)

// Lifetimes of a sign-in's pieces.
const (
	// StateTTL is how long a sign-in may take at the provider.
	StateTTL = 10 * time.Minute
	// CodeTTL is how long the one-time code handed back to the
	// application lives.
	CodeTTL = 60 * time.Second
)

// Reasons a sign-in is refused, as the audit trail and the events record
// them.
const (
	ReasonStateUnknown      = "state_unknown"
	ReasonStateReplayed     = "state_replayed"
	ReasonStateExpired      = "state_expired"
	ReasonStateWrongBrowser = "state_wrong_browser"
	ReasonTenantMismatch    = "tenant_mismatch"
	ReasonProviderError     = "provider_error"
	ReasonCodeExchange      = "code_exchange_failed"
	ReasonNoIDToken         = "no_id_token"
	ReasonBadSignature      = "bad_signature"
	ReasonWrongIssuer       = "wrong_issuer"
	ReasonWrongAudience     = "wrong_audience"
	ReasonExpired           = "token_expired"
	ReasonIssuedAt          = "bad_issued_at"
	ReasonNonceMismatch     = "nonce_mismatch"
	ReasonWrongDirectory    = "wrong_directory"
	ReasonHostedDomain      = "wrong_hosted_domain"
	ReasonNoSubject         = "no_subject"
	ReasonNoEmail           = "no_email"
	ReasonDomainNotAllowed  = "domain_not_allowed"
	ReasonGroupNotAllowed   = "group_not_allowed"
	ReasonGroupsUnresolved  = "groups_unresolved"
	ReasonNotProvisioned    = "not_provisioned"
	ReasonLinkRequired      = "link_required"
	ReasonInactive          = "account_inactive"
	ReasonNotAvailable      = "sso_not_available"
)

// Refusal is a sign-in refused: the error a client sees, the reason
// recorded, and where the browser goes back to (the state's return URL),
// when it is known.
type Refusal struct {
	Err       *tenantry.Error
	Reason    string
	ReturnURL string
	TenantID  string
}

func (r *Refusal) Error() string { return r.Err.Error() }

// Unwrap lets errors.As find the client's error.
func (r *Refusal) Unwrap() error { return r.Err }

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func verifierAAD(stateHash string) keyring.AAD {
	return keyring.AAD{"table", tableStates, "column", "code_verifier", "row", stateHash}
}

// defaultScopes are requested when a configuration names none.
func defaultScopes(providerType string) []string {
	switch providerType {
	case AzureAD:
		return []string{"profile", "email", "offline_access", "User.Read"}
	case Google:
		return []string{"profile", "email"}
	}
	return []string{"profile", "email"}
}

func (s *Service) oauth(c *Config, p *provider, secret, redirectURI string) *oauth2.Config {
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = defaultScopes(c.ProviderType)
	}
	return &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: secret, RedirectURL: redirectURI,
		Endpoint: p.oidc.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, scopes...),
	}
}

// StartInput begins a sign-in.
type StartInput struct {
	TenantID  string
	ReturnURL string
	LoginHint string
	// CallbackURL is where the provider sends the browser back: this
	// server's callback route.
	CallbackURL string
	// LinkUserID is set when the owner of an account, signed in with a
	// password, links the identity this sign-in proves to it.
	LinkUserID string
	// BrowserSecret is the browser's sign-in cookie when it has one, so
	// that sign-ins begun at once in one browser all stay bound to it.
	BrowserSecret string
}

// Started is a sign-in begun: the browser goes to AuthURL, carrying
// BrowserSecret in a cookie of its own.
type Started struct {
	AuthURL       string
	BrowserSecret string
}

// usable returns a tenant's configuration when its members may sign in
// through it.
func (s *Service) usable(ctx context.Context, tenantID string) (*Config, error) {
	_, method, err := activeTenant(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	if method == tenantry.AuthLocal {
		return nil, tenantry.Errorf(tenantry.ESSONotAvailable, "SSO not enabled for this tenant")
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if errors.Is(err, errNoConfig) || (err == nil && !c.IsEnabled) {
		return nil, tenantry.Errorf(tenantry.ESSONotAvailable, "No active SSO configuration found")
	}
	return c, err
}

// providerFor returns the configuration's provider, its failures as the
// client's error.
func (s *Service) providerFor(ctx context.Context, c *Config) (*provider, error) {
	p, err := s.provider(ctx, c)
	if msg, ok := isDiscoveryError(err); ok {
		s.logger.WarnContext(ctx, "single sign-on provider unusable", "tenant_id", c.TenantID, "problem", msg)
		return nil, tenantry.Errorf(tenantry.ESSOProviderUnavailable, "The tenant's identity provider cannot be reached or is misconfigured")
	}
	return p, err
}

// Start begins a sign-in at a tenant's provider: it checks the return URL
// against the tenant's allowed ones, keeps a single-use state bound to the
// browser, and returns the provider's authorization URL with the state, a
// nonce and a PKCE S256 challenge.
func (s *Service) Start(ctx context.Context, in StartInput) (*Started, error) {
	c, err := s.usable(ctx, in.TenantID)
	if err != nil {
		return nil, err
	}
	if in.ReturnURL != "" && (len(in.ReturnURL) > 2048 || !RedirectAllowed(in.ReturnURL, c.AllowedRedirectURLs)) {
		audit.Annotate(ctx, "reason", "redirect_not_allowed")
		return nil, tenantry.Errorf(tenantry.ERedirectNotAllowed, "return_url is not one of the tenant's allowed redirect URLs")
	}
	if utf8.RuneCountInString(in.LoginHint) > 255 || strings.ContainsFunc(in.LoginHint, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "login_hint is not valid")
	}
	p, err := s.providerFor(ctx, c)
	if err != nil {
		return nil, err
	}
	state, nonce, verifier, browser := random(32), random(32), oauth2.GenerateVerifier(), in.BrowserSecret
	if browser == "" {
		browser = random(32)
	}
	stateHash := hash(state)
	sealed, err := s.seal(ctx, in.TenantID, []byte(verifier), verifierAAD(stateHash))
	if err != nil {
		return nil, err
	}
	now := sqldb.Now()
	f := &flowState{tenantID: in.TenantID, browserHash: hash(browser), nonce: nonce, codeVerifier: sealed,
		redirectURI: in.CallbackURL, returnURL: in.ReturnURL, linkUserID: in.LinkUserID, expiresAt: now.Add(StateTTL)}
	if err := insertState(ctx, s.db, stateHash, f, now); err != nil {
		return nil, err
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if in.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", in.LoginHint))
	}
	switch c.ProviderType {
	case AzureAD:
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", "query"), oauth2.SetAuthURLParam("prompt", "select_account"))
	case Google:
		if c.HostedDomain != "" {
			opts = append(opts, oauth2.SetAuthURLParam("hd", c.HostedDomain))
		}
	}
	return &Started{AuthURL: s.oauth(c, p, "", in.CallbackURL).AuthCodeURL(state, opts...), BrowserSecret: browser}, nil
}

// CallbackInput is what the provider sent the browser back with.
type CallbackInput struct {
	State            string
	Code             string
	Error            string
	ErrorDescription string
	// BrowserSecret is the value of the browser's sign-in cookie.
	BrowserSecret string
	// TenantID, when the callback names one, must be the tenant whose
	// sign-in the state belongs to.
	TenantID string
}

// Completed is a sign-in done. With a return URL, the browser goes back
// there with Code, to be exchanged once for a session; without, Login is
// the session opened.
type Completed struct {
	TenantID  string
	UserID    string
	ReturnURL string
	Code      string
	Login     *account.LoginResult
}

// refuse records a refused sign-in and returns it as the error.
func (s *Service) refuse(ctx context.Context, code, message, reason string, f *flowState) error {
	r := &Refusal{Err: tenantry.Errorf(code, "%s", message), Reason: reason}
	audit.Annotate(ctx, "reason", reason)
	audit.Annotate(ctx, "error_code", code)
	if f != nil {
		r.ReturnURL, r.TenantID = f.returnURL, f.tenantID
		audit.SetTenant(ctx, f.tenantID)
		audit.SetTarget(ctx, "tenant", f.tenantID)
	}
	if err := s.streams.EmitPlatform(ctx, s.db, tenantry.EventSSOLoginRefused, r.TenantID, "", map[string]any{
		"tenant_id": r.TenantID, "reason": reason, "error_code": code,
	}); err != nil {
		s.logger.WarnContext(ctx, "recording a refused sign-in", "error", err)
	} else {
		s.streams.Committed()
	}
	s.logger.InfoContext(ctx, "single sign-on refused", "tenant_id", r.TenantID, "reason", reason)
	return r
}

// Callback completes a sign-in: it takes the state once, checks that the
// browser is the one that started it and that it concerns the tenant it
// names, exchanges the code (with the PKCE verifier), verifies the ID token
// in full, then finds, links or provisions the account and applies the
// tenant's role mapping.
func (s *Service) Callback(ctx context.Context, in CallbackInput) (*Completed, error) {
	if in.State == "" || len(in.State) > 512 {
		return nil, s.refuse(ctx, tenantry.ESSOStateInvalid, "Invalid state token - possible CSRF attack", ReasonStateUnknown, nil)
	}
	stateHash := hash(in.State)
	now := sqldb.Now()
	f, err := consumeState(ctx, s.db, stateHash, now)
	if errors.Is(err, sqldb.ErrNoRows) {
		tenantID, known, err := stateKnown(ctx, s.db, stateHash)
		if err != nil {
			return nil, err
		}
		if known {
			return nil, s.refuse(ctx, tenantry.ESSOStateInvalid, "This sign-in was already completed; start again",
				ReasonStateReplayed, &flowState{tenantID: tenantID})
		}
		return nil, s.refuse(ctx, tenantry.ESSOStateInvalid, "Invalid state token - possible CSRF attack", ReasonStateUnknown, nil)
	} else if err != nil {
		return nil, err
	}
	if !now.Before(f.expiresAt) {
		return nil, s.refuse(ctx, tenantry.ESSOStateInvalid, "The sign-in took too long; start again", ReasonStateExpired, f)
	}
	if in.BrowserSecret == "" || subtle.ConstantTimeCompare([]byte(hash(in.BrowserSecret)), []byte(f.browserHash)) != 1 {
		// Someone else's state: whoever brought it must not learn where
		// that browser wanted to go.
		f.returnURL = ""
		return nil, s.refuse(ctx, tenantry.ESSOStateInvalid, "This sign-in was started in another browser", ReasonStateWrongBrowser, f)
	}
	if in.TenantID != "" && !strings.EqualFold(in.TenantID, f.tenantID) {
		return nil, s.refuse(ctx, tenantry.ESSOTenantMismatch, "The sign-in was started for another tenant", ReasonTenantMismatch, f)
	}
	if in.Error != "" {
		return nil, s.refuse(ctx, tenantry.ESSOProviderError, "The identity provider refused the sign-in: "+sanitize(in.Error), ReasonProviderError, f)
	}
	if in.Code == "" {
		return nil, s.refuse(ctx, tenantry.ESSOProviderError, "No authorization code received", ReasonProviderError, f)
	}
	c, err := s.usable(ctx, f.tenantID)
	if err != nil {
		if tenantry.ErrorCode(err) == tenantry.EInternal {
			return nil, err
		}
		return nil, s.refuse(ctx, tenantry.ESSONotAvailable, "SSO is no longer available for this tenant", ReasonNotAvailable, f)
	}
	claims, tokens, err := s.exchange(ctx, c, f, in.Code)
	if err != nil {
		return nil, err
	}
	res, err := s.signIn(ctx, c, f, claims, tokens)
	if err != nil {
		return nil, err
	}
	res.ReturnURL = f.returnURL
	if f.returnURL != "" {
		code := random(32)
		if err := insertCode(ctx, s.db, hash(code), f.tenantID, res.UserID, now, now.Add(CodeTTL)); err != nil {
			return nil, err
		}
		res.Code = code
		return res, nil
	}
	res.Login, err = s.accounts.OpenSSOSession(ctx, res.UserID, f.tenantID)
	return res, err
}

// sanitize keeps a provider's error code printable and short.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// providerTokens are the provider's tokens from a code exchange.
type providerTokens struct {
	access, refresh string
	expiry          time.Time
}

// exchange redeems the code and verifies the ID token it brings.
func (s *Service) exchange(ctx context.Context, c *Config, f *flowState, code string) (*Claims, *providerTokens, error) {
	p, err := s.providerFor(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	_, secret, err := s.clientSecret(ctx, c.TenantID)
	if err != nil {
		return nil, nil, err
	}
	verifier, err := s.open(ctx, f.tenantID, f.codeVerifier, verifierAAD(f.stateHash))
	if err != nil {
		return nil, nil, err
	}
	xctx := context.WithValue(ctx, oauth2.HTTPClient, s.client)
	tok, err := s.oauth(c, p, secret, f.redirectURI).Exchange(xctx, code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		// The error may quote the provider's answer, which may quote the
		// request: only its OAuth error code is kept.
		var re *oauth2.RetrieveError
		detail := "unreachable"
		if errors.As(err, &re) {
			detail = sanitize(re.ErrorCode)
		}
		s.logger.WarnContext(ctx, "single sign-on code exchange failed", "tenant_id", c.TenantID, "provider_error", detail)
		return nil, nil, s.refuse(ctx, tenantry.ESSOProviderError, "The identity provider did not accept the authorization code", ReasonCodeExchange, f)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil, s.refuse(ctx, tenantry.ESSOTokenInvalid, "The identity provider returned no ID token", ReasonNoIDToken, f)
	}
	claims, reason, err := s.verify(ctx, c, p, f, raw)
	if err != nil {
		return nil, nil, err
	}
	if reason != "" {
		return nil, nil, s.refuse(ctx, tenantry.ESSOTokenInvalid, "The ID token is not valid", reason, f)
	}
	pt := &providerTokens{access: tok.AccessToken, refresh: tok.RefreshToken, expiry: tok.Expiry}
	return claims, pt, nil
}

// Claims are what an ID token says about the person.
type Claims struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Groups        []string
	// Directory and ObjectID are Entra's tid and oid.
	Directory string
	ObjectID  string
	// HostedDomain is Google's hd.
	HostedDomain string
	// GroupsOverage is set when Entra left the groups out for being too
	// many: they must be read from Microsoft Graph.
	GroupsOverage bool
}

type rawClaims struct {
	Email             string          `json:"email"`
	EmailVerified     json.RawMessage `json:"email_verified"`
	EmailOwner        json.RawMessage `json:"xms_edov"`
	Name              string          `json:"name"`
	GivenName         string          `json:"given_name"`
	FamilyName        string          `json:"family_name"`
	PreferredUsername string          `json:"preferred_username"`
	UPN               string          `json:"upn"`
	Groups            []string        `json:"groups"`
	TID               string          `json:"tid"`
	OID               string          `json:"oid"`
	HD                string          `json:"hd"`
	IssuedAt          *json.Number    `json:"iat"`
	ClaimNames        map[string]any  `json:"_claim_names"`
}

// truthy reads a boolean claim that some providers send as a string.
func truthy(raw json.RawMessage) bool {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	return strings.EqualFold(s, "true")
}

// verify checks an ID token completely: signature against the provider's
// keys (refetched when the token names a key not yet known), issuer,
// audience and expiry (by go-oidc), then issued-at, nonce, and the
// provider type's own rules. A refusal is returned as its reason.
func (s *Service) verify(ctx context.Context, c *Config, p *provider, f *flowState, raw string) (*Claims, string, error) {
	vctx := oidc.ClientContext(ctx, s.client)
	tok, err := p.verifier.Verify(vctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		msg := err.Error()
		switch {
		case errors.As(err, &expired):
			return nil, ReasonExpired, nil
		case strings.Contains(msg, "issued by a different provider"):
			if c.ProviderType == AzureAD {
				// Another directory's issuer: Entra's keys are shared,
				// only the issuer and tid tell directories apart.
				return nil, ReasonWrongDirectory, nil
			}
			return nil, ReasonWrongIssuer, nil
		case strings.Contains(msg, "expected audience"):
			return nil, ReasonWrongAudience, nil
		case strings.Contains(msg, "fetching keys"), strings.Contains(msg, "get keys"):
			s.logger.WarnContext(ctx, "single sign-on provider keys unavailable", "tenant_id", c.TenantID)
			return nil, "", tenantry.Errorf(tenantry.ESSOProviderUnavailable, "The identity provider's keys cannot be fetched")
		}
		return nil, ReasonBadSignature, nil
	}
	var rc rawClaims
	if err := tok.Claims(&rc); err != nil {
		return nil, ReasonBadSignature, nil
	}
	now := s.now()
	if tok.IssuedAt.IsZero() || tok.IssuedAt.After(now.Add(clockSkew)) {
		return nil, ReasonIssuedAt, nil
	}
	if tok.Nonce == "" || subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(f.nonce)) != 1 {
		return nil, ReasonNonceMismatch, nil
	}
	cl := &Claims{
		Issuer: tok.Issuer, Subject: tok.Subject, Email: strings.ToLower(strings.TrimSpace(rc.Email)), EmailVerified: truthy(rc.EmailVerified),
		Name: rc.Name, GivenName: rc.GivenName, FamilyName: rc.FamilyName, Groups: rc.Groups, HostedDomain: rc.HD,
	}
	switch c.ProviderType {
	case AzureAD:
		// Entra signs every directory's tokens with the same keys: only
		// the issuer and tid tell one directory from another, for a
		// multi-tenant application too.
		tid := strings.ToLower(rc.TID)
		if tid == "" || tid != p.directory || tok.Issuer != s.cfg.AzureAuthority+"/"+tid+"/v2.0" {
			return nil, ReasonWrongDirectory, nil
		}
		if !isGUID(rc.OID) {
			return nil, ReasonNoSubject, nil
		}
		cl.Directory, cl.ObjectID, cl.Subject = tid, strings.ToLower(rc.OID), strings.ToLower(rc.OID)
		if cl.Email == "" {
			for _, v := range []string{rc.PreferredUsername, rc.UPN} {
				if strings.Contains(v, "@") {
					cl.Email = strings.ToLower(strings.TrimSpace(v))
					break
				}
			}
		}
		// Entra asserts an address only when the directory owns its
		// domain (xms_edov).
		cl.EmailVerified = truthy(rc.EmailOwner) || cl.EmailVerified
		if _, ok := rc.ClaimNames["groups"]; ok {
			cl.GroupsOverage = true
		}
	case Google:
		if c.HostedDomain != "" && !strings.EqualFold(rc.HD, c.HostedDomain) {
			return nil, ReasonHostedDomain, nil
		}
	}
	if cl.Subject == "" || len(cl.Subject) > 255 {
		return nil, ReasonNoSubject, nil
	}
	return cl, "", nil
}
