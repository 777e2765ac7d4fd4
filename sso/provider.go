package sso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// signingAlgs are the ID token signatures accepted: asymmetric ones only.
// "none" and HS256 (which an attacker could compute with the provider's
// public key as the HMAC secret) are refused before any key is consulted.
var signingAlgs = []string{ //nolint:gochecknoglobals // read-only list
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA,
}

// discoveryTTL is how long a provider's discovery document is trusted
// before it is fetched again. Its keys are cached by the key set, which
// fetches them again when a token names a key it does not know.
const discoveryTTL = time.Hour

// maxDiscoveryBytes bounds what a provider's discovery answer may weigh.
const maxDiscoveryBytes = 1 << 20

// discovery is the part of a provider's discovery document used here.
type discovery struct {
	Issuer             string   `json:"issuer"`
	AuthURL            string   `json:"authorization_endpoint"`
	TokenURL           string   `json:"token_endpoint"`
	UserInfoURL        string   `json:"userinfo_endpoint"`
	JWKSURL            string   `json:"jwks_uri"`
	EndSessionURL      string   `json:"end_session_endpoint"`
	Algorithms         []string `json:"id_token_signing_alg_values_supported"`
	CodeChallengeModes []string `json:"code_challenge_methods_supported"`
}

// provider is a provider discovered and ready to verify tokens.
type provider struct {
	doc      discovery
	oidc     *oidc.Provider
	verifier *oidc.IDTokenVerifier
	// directory is Entra's directory id, read from its issuer.
	directory string
	fetched   time.Time
}

// providers caches discovered providers by discovery URL and client id.
type providers struct {
	client *http.Client
	mu     sync.Mutex
	cache  map[string]*provider
}

func newProviders(client *http.Client) *providers {
	return &providers{client: client, cache: map[string]*provider{}}
}

// errDiscovery is a provider's discovery that failed or did not satisfy
// the rules: the message is safe to show an admin.
type errDiscovery struct{ msg string }

func (e *errDiscovery) Error() string { return e.msg }

func discoveryErrorf(format string, args ...any) error {
	return &errDiscovery{msg: fmt.Sprintf(format, args...)}
}

// entraIssuer matches an Entra directory's v2.0 issuer under an authority.
func entraIssuer(authority string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(strings.TrimSuffix(authority, "/")) +
		`/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/v2\.0$`)
}

// discoveryURL returns where a configuration's provider describes itself
// and the issuer expected there ("" when only the discovery can tell, as
// for an Entra directory named by a domain).
func (s *Service) discoveryURL(c *Config) (wellKnown, issuer string) {
	switch c.ProviderType {
	case AzureAD:
		base := strings.TrimSuffix(s.cfg.AzureAuthority, "/") + "/" + c.ProviderTenantID + "/v2.0"
		if isGUID(c.ProviderTenantID) {
			issuer = strings.TrimSuffix(s.cfg.AzureAuthority, "/") + "/" + strings.ToLower(c.ProviderTenantID) + "/v2.0"
		}
		return base + "/.well-known/openid-configuration", issuer
	case Google:
		return strings.TrimSuffix(s.cfg.GoogleIssuer, "/") + "/.well-known/openid-configuration", s.cfg.GoogleIssuer
	}
	return strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration", c.Issuer
}

// provider returns the configuration's provider, discovering it when it is
// not cached or its discovery is old.
func (s *Service) provider(ctx context.Context, c *Config) (*provider, error) {
	wellKnown, expected := s.discoveryURL(c)
	key := wellKnown + "\x00" + c.ClientID
	p := s.providers.get(key)
	if p != nil && time.Since(p.fetched) < discoveryTTL {
		return p, nil
	}
	p, err := s.discover(ctx, c, wellKnown, expected)
	if err != nil {
		return nil, err
	}
	s.providers.put(key, p)
	return p, nil
}

func (ps *providers) get(key string) *provider {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.cache[key]
}

func (ps *providers) put(key string, p *provider) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.cache) > 10000 {
		clear(ps.cache)
	}
	ps.cache[key] = p
}

// discover fetches and checks a provider's discovery document.
func (s *Service) discover(ctx context.Context, c *Config, wellKnown, expected string) (*provider, error) {
	doc, err := s.fetchDiscovery(ctx, wellKnown)
	if err != nil {
		return nil, err
	}
	p := &provider{doc: *doc, fetched: time.Now()}
	switch c.ProviderType {
	case AzureAD:
		m := entraIssuer(s.cfg.AzureAuthority).FindStringSubmatch(doc.Issuer)
		if m == nil {
			return nil, discoveryErrorf("The provider's issuer %q is not an Entra directory's issuer under %s", doc.Issuer, s.cfg.AzureAuthority)
		}
		p.directory = strings.ToLower(m[1])
		if expected != "" && !strings.EqualFold(doc.Issuer, expected) {
			return nil, discoveryErrorf("The provider's issuer %q is not the configured directory's (%s)", doc.Issuer, expected)
		}
	default:
		if doc.Issuer != expected {
			return nil, discoveryErrorf("The provider's issuer %q differs from the configured issuer %q", doc.Issuer, expected)
		}
	}
	for name, u := range map[string]string{"authorization_endpoint": doc.AuthURL, "token_endpoint": doc.TokenURL, "jwks_uri": doc.JWKSURL} {
		if u == "" {
			return nil, discoveryErrorf("The provider's discovery document has no %s", name)
		}
		if msg := checkRedirectURL(u); msg != "" {
			return nil, discoveryErrorf("The provider's %s is not acceptable: it must be an https URL (plain http only on a loopback address)", name)
		}
	}
	pctx := oidc.ClientContext(context.WithoutCancel(ctx), s.client)
	p.oidc = (&oidc.ProviderConfig{
		IssuerURL: doc.Issuer, AuthURL: doc.AuthURL, TokenURL: doc.TokenURL, UserInfoURL: doc.UserInfoURL,
		JWKSURL: doc.JWKSURL, Algorithms: signingAlgs,
	}).NewProvider(pctx)
	p.verifier = p.oidc.VerifierContext(pctx, &oidc.Config{
		ClientID:             c.ClientID,
		SupportedSigningAlgs: signingAlgs,
		// A small allowance for clocks that disagree: a token is taken
		// as unexpired for clockSkew after its exp.
		Now: func() time.Time { return s.now().Add(-clockSkew) },
	})
	return p, nil
}

func (s *Service) fetchDiscovery(ctx context.Context, wellKnown string) (*discovery, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return nil, discoveryErrorf("The provider's discovery URL is not valid")
	}
	res, err := s.client.Do(req)
	if err != nil {
		return nil, discoveryErrorf("Failed to reach the provider's discovery document at %s", wellKnown)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, discoveryErrorf("The provider's discovery document at %s answered status %d", wellKnown, res.StatusCode)
	}
	var doc discovery
	if err := json.NewDecoder(io.LimitReader(res.Body, maxDiscoveryBytes)).Decode(&doc); err != nil {
		return nil, discoveryErrorf("The provider's discovery document at %s is not valid JSON", wellKnown)
	}
	return &doc, nil
}

// checkKeys fetches the provider's key set, for validation.
func (s *Service) checkKeys(ctx context.Context, jwksURL string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return 0, discoveryErrorf("The provider's jwks_uri is not valid")
	}
	res, err := s.client.Do(req)
	if err != nil {
		return 0, discoveryErrorf("Failed to reach the provider's keys at %s", jwksURL)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, discoveryErrorf("The provider's keys at %s answered status %d", jwksURL, res.StatusCode)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxDiscoveryBytes)).Decode(&set); err != nil {
		return 0, discoveryErrorf("The provider's keys at %s are not a JSON key set", jwksURL)
	}
	if len(set.Keys) == 0 {
		return 0, discoveryErrorf("The provider's key set at %s has no keys", jwksURL)
	}
	return len(set.Keys), nil
}

func isDiscoveryError(err error) (string, bool) {
	var d *errDiscovery
	if errors.As(err, &d) {
		return d.msg, true
	}
	return "", false
}
