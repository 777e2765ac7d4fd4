package sso

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
)

var errNoIdentity = tenantry.Errorf(tenantry.ENotFound, "No SSO identity found for this tenant")

// providerToken returns the caller's provider access token for a tenant,
// refreshed first when it expired (or is about to) and a refresh token is
// kept.
func (s *Service) providerToken(ctx context.Context, c *Config, userID string, forceRefresh bool) (string, *time.Time, error) {
	id, sealedAccess, sealedRefresh, expires, err := sealedTokens(ctx, s.db, c.TenantID, userID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", nil, errNoIdentity
	} else if err != nil {
		return "", nil, err
	}
	if sealedAccess == nil {
		return "", nil, tenantry.Errorf(tenantry.EBadRequest, "No provider token is stored: sign in through the provider again")
	}
	fresh := expires == nil || expires.After(s.now().Add(time.Minute))
	if fresh && !forceRefresh {
		access, err := s.open(ctx, c.TenantID, sealedAccess, tokenAAD(id, "access_token"))
		return string(access), expires, err
	}
	if sealedRefresh == nil {
		return "", nil, tenantry.Errorf(tenantry.EUnauthorized, "The provider token expired and no refresh token is stored: sign in through the provider again")
	}
	refresh, err := s.open(ctx, c.TenantID, sealedRefresh, tokenAAD(id, "refresh_token"))
	if err != nil {
		return "", nil, err
	}
	p, err := s.providerFor(ctx, c)
	if err != nil {
		return "", nil, err
	}
	_, secret, err := s.clientSecret(ctx, c.TenantID)
	if err != nil {
		return "", nil, err
	}
	xctx := context.WithValue(ctx, oauth2.HTTPClient, s.client)
	tok, err := s.oauth(c, p, secret, "").TokenSource(xctx, &oauth2.Token{RefreshToken: string(refresh), Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		detail := "unreachable"
		if errors.As(err, &re) {
			detail = sanitize(re.ErrorCode)
		}
		s.logger.WarnContext(ctx, "refreshing provider tokens failed", "tenant_id", c.TenantID, "provider_error", detail)
		return "", nil, tenantry.Errorf(tenantry.ESSOProviderError, "The identity provider refused to refresh the token: sign in through it again")
	}
	now := sqldb.Now()
	if err := s.keepTokens(ctx, c.TenantID, id, &providerTokens{access: tok.AccessToken, refresh: tok.RefreshToken, expiry: tok.Expiry}, now); err != nil {
		return "", nil, err
	}
	var exp *time.Time
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		exp = &e
	}
	return tok.AccessToken, exp, nil
}

// RefreshProviderTokens refreshes the caller's provider tokens for a
// tenant and returns when the new access token expires. The tokens
// themselves are never returned.
func (s *Service) RefreshProviderTokens(ctx context.Context, tenantID string) (*time.Time, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	c, err := s.memberConfig(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	_, exp, err := s.providerToken(ctx, c, p.UserID, true)
	return exp, err
}

// memberConfig returns the configuration of a tenant the caller belongs
// to.
func (s *Service) memberConfig(ctx context.Context, tenantID string) (*Config, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.TenantRead); err != nil {
		return nil, err
	}
	return findConfig(ctx, s.db, tenantID)
}

// UserInfo returns what the provider says about the caller: its userinfo
// endpoint's answer, or Microsoft Graph's /me for Entra.
func (s *Service) UserInfo(ctx context.Context, tenantID string) (map[string]any, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	c, err := s.memberConfig(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	access, _, err := s.providerToken(ctx, c, p.UserID, false)
	if err != nil {
		return nil, err
	}
	endpoint := s.cfg.GraphURL + "/v1.0/me"
	if c.ProviderType != AzureAD {
		prov, err := s.providerFor(ctx, c)
		if err != nil {
			return nil, err
		}
		if endpoint = prov.doc.UserInfoURL; endpoint == "" {
			return nil, tenantry.Errorf(tenantry.ESSOProviderError, "The identity provider has no userinfo endpoint")
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+access)
	res, err := s.client.Do(req)
	if err != nil {
		return nil, tenantry.Errorf(tenantry.ESSOProviderUnavailable, "The identity provider cannot be reached")
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, tenantry.Errorf(tenantry.ESSOProviderError, "The identity provider answered %d", res.StatusCode)
	}
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&out); err != nil {
		return nil, tenantry.Errorf(tenantry.ESSOProviderError, "The identity provider's answer is not a JSON object")
	}
	return out, nil
}

// Logout ends the caller's session, forgets the provider tokens stored for
// the tenant, and returns the provider's end-session URL, if it has one.
func (s *Service) Logout(ctx context.Context, tenantID, postLogoutRedirect string) (string, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return "", tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	c, err := s.memberConfig(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if postLogoutRedirect != "" && !RedirectAllowed(postLogoutRedirect, c.AllowedRedirectURLs) {
		return "", tenantry.Errorf(tenantry.ERedirectNotAllowed, "post_logout_redirect_uri is not one of the tenant's allowed redirect URLs")
	}
	n, err := forgetTokens(ctx, s.db, tenantID, p.UserID, sqldb.Now())
	if err != nil {
		return "", err
	}
	audit.Annotate(ctx, "provider_tokens_forgotten", n)
	if err := s.accounts.Logout(ctx); err != nil {
		return "", err
	}
	prov, err := s.provider(ctx, c)
	if err != nil || prov.doc.EndSessionURL == "" {
		return "", nil
	}
	u, err := url.Parse(prov.doc.EndSessionURL)
	if err != nil {
		return "", nil
	}
	q := u.Query()
	q.Set("client_id", c.ClientID)
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// RefreshAhead is how long before they expire the refresh job renews
// provider tokens; RefreshEvery is how often it runs.
const (
	RefreshAhead = 10 * time.Minute
	RefreshEvery = 5 * time.Minute
)

// RefreshExpiring renews the provider tokens that expire within ahead and
// can be refreshed, for tenants whose single sign-on is on, so that
// user-info and the like keep working between sign-ins. It returns how
// many it renewed; one that fails is logged and left for the next run or
// the next sign-in.
func (s *Service) RefreshExpiring(ctx context.Context, ahead time.Duration) (int, error) {
	rows, err := s.db.Query(ctx, `
		SELECT i.tenant_id, i.user_id FROM sso_identities i JOIN sso_configs c ON c.tenant_id = i.tenant_id
		WHERE i.refresh_token IS NOT NULL AND i.token_expires_at < $1 AND c.is_enabled
		ORDER BY i.token_expires_at `+sqldb.Limit(500), s.now().Add(ahead).UTC())
	if err != nil {
		return 0, err
	}
	type due struct{ tenantID, userID string }
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.tenantID, &d.userID); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range list {
		c, err := findConfig(ctx, s.db, d.tenantID)
		if err == nil {
			_, _, err = s.providerToken(ctx, c, d.userID, true)
		}
		if err != nil {
			s.logger.WarnContext(ctx, "refreshing stored provider tokens", "tenant_id", d.tenantID, "user_id", d.userID, "error", tenantry.ErrorCode(err))
			continue
		}
		n++
	}
	return n, nil
}
