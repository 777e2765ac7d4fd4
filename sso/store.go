package sso

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// Names binding sealed values to where they are stored (keyring.AAD).
const (
	tableConfigs    = "sso_configs"
	tableIdentities = "sso_identities"
	tableStates     = "sso_states"
)

var errNoConfig = tenantry.Errorf(tenantry.ENotFound, "No SSO configuration found")

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

const configColumns = `c.id, c.tenant_id, c.provider_type, c.provider_tenant_id, c.issuer, c.hosted_domain, c.client_id,
	c.allowed_redirect_urls, c.scopes, c.auto_provisioning, c.is_enabled, t.auth_method, c.created_at, c.updated_at,
	COALESCE(CAST(c.created_by AS TEXT), '')`

func scanConfig(row sqldb.Row) (*Config, error) {
	var c Config
	var redirects, scopes, auto string
	err := row.Scan(&c.ID, &c.TenantID, &c.ProviderType, &c.ProviderTenantID, &c.Issuer, &c.HostedDomain, &c.ClientID,
		&redirects, &scopes, &auto, &c.IsEnabled, &c.AuthMethod, &c.CreatedAt, &c.UpdatedAt, &c.CreatedBy)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errNoConfig
	} else if err != nil {
		return nil, err
	}
	c.HasClientSecret = true
	c.AllowedRedirectURLs = []string{}
	_ = json.Unmarshal([]byte(redirects), &c.AllowedRedirectURLs)
	c.Scopes = strings.Fields(scopes)
	c.AutoProvisioning = decodeAutoProvisioning(auto)
	return &c, nil
}

func findConfig(ctx context.Context, q sqldb.Querier, tenantID string) (*Config, error) {
	return scanConfig(q.QueryRow(ctx, `
		SELECT `+configColumns+` FROM sso_configs c JOIN tenants t ON t.id = c.tenant_id
		WHERE c.tenant_id = $1`, tenantID))
}

func findSecret(ctx context.Context, q sqldb.Querier, tenantID string) (id string, sealed []byte, err error) {
	err = q.QueryRow(ctx, `SELECT id, client_secret FROM sso_configs WHERE tenant_id = $1`, tenantID).Scan(&id, &sealed)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", nil, errNoConfig
	}
	return id, sealed, err
}

func encodeList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func insertConfig(ctx context.Context, q sqldb.Querier, c *Config, sealed []byte) error {
	_, err := q.Exec(ctx, `
		INSERT INTO sso_configs (id, tenant_id, provider_type, provider_tenant_id, issuer, hosted_domain, client_id, client_secret,
			allowed_redirect_urls, auto_provisioning, is_enabled, created_at, updated_at, created_by, scopes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.ID, c.TenantID, c.ProviderType, c.ProviderTenantID, c.Issuer, c.HostedDomain, c.ClientID, sealed,
		encodeList(c.AllowedRedirectURLs), c.AutoProvisioning.encode(), c.IsEnabled, c.CreatedAt, c.UpdatedAt, nullable(c.CreatedBy),
		strings.Join(c.Scopes, " "))
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return tenantry.Errorf(tenantry.EConflict, "The tenant already has an SSO configuration. Delete the existing configuration before creating a new one.")
	}
	return err
}

func updateConfig(ctx context.Context, q sqldb.Querier, c *Config, sealed []byte) error {
	if sealed != nil {
		if _, err := q.Exec(ctx, `UPDATE sso_configs SET client_secret = $2 WHERE tenant_id = $1`, c.TenantID, sealed); err != nil {
			return err
		}
	}
	_, err := q.Exec(ctx, `
		UPDATE sso_configs SET provider_type = $2, provider_tenant_id = $3, issuer = $4, hosted_domain = $5, client_id = $6,
			allowed_redirect_urls = $7, auto_provisioning = $8, is_enabled = $9, updated_at = $10, scopes = $11
		WHERE tenant_id = $1`,
		c.TenantID, c.ProviderType, c.ProviderTenantID, c.Issuer, c.HostedDomain, c.ClientID,
		encodeList(c.AllowedRedirectURLs), c.AutoProvisioning.encode(), c.IsEnabled, c.UpdatedAt, strings.Join(c.Scopes, " "))
	return err
}

func deleteConfig(ctx context.Context, q sqldb.Querier, tenantID string) error {
	_, err := q.Exec(ctx, `DELETE FROM sso_configs WHERE tenant_id = $1`, tenantID)
	return err
}

func setAuthMethod(ctx context.Context, q sqldb.Querier, tenantID, method string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE tenants SET auth_method = $2, updated_at = $3 WHERE id = $1`, tenantID, method, now)
	return err
}

// activeTenant reads an active tenant's name and sign-in method, without
// asking who wants to know: sign-in routes are not authenticated.
func activeTenant(ctx context.Context, q sqldb.Querier, tenantID string) (name, authMethod string, err error) {
	err = q.QueryRow(ctx, `SELECT name, auth_method FROM tenants WHERE id = $1 AND is_active AND provisioned_at IS NOT NULL`, tenantID).
		Scan(&name, &authMethod)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", "", tenantry.Errorf(tenantry.ENotFound, "Tenant not found")
	}
	return name, authMethod, err
}

// ConfigSummary is one line of the platform-wide list of configurations.
type ConfigSummary struct {
	TenantID         string
	TenantName       string
	ProviderType     string
	ProviderTenantID string
	Issuer           string
	ClientID         string
	IsEnabled        bool
	AuthMethod       string
	CreatedAt        time.Time
}

func listConfigs(ctx context.Context, q sqldb.Querier, onlyEnabled bool) ([]ConfigSummary, error) {
	rows, err := q.Query(ctx, `
		SELECT c.tenant_id, t.name, c.provider_type, c.provider_tenant_id, c.issuer, c.client_id, c.is_enabled, t.auth_method, c.created_at
		FROM sso_configs c JOIN tenants t ON t.id = c.tenant_id
		WHERE t.provisioned_at IS NOT NULL AND (c.is_enabled OR NOT $1)
		ORDER BY c.created_at, c.tenant_id`, onlyEnabled)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ConfigSummary{}
	for rows.Next() {
		var s ConfigSummary
		if err := rows.Scan(&s.TenantID, &s.TenantName, &s.ProviderType, &s.ProviderTenantID, &s.Issuer, &s.ClientID, &s.IsEnabled,
			&s.AuthMethod, &s.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Identity is a user's identity at a tenant's provider.
type Identity struct {
	ID               string
	TenantID         string
	TenantName       string
	UserID           string
	Issuer           string
	Subject          string
	ProviderTenantID string
	ObjectID         string
	Email            string
	DisplayName      string
	HasTokens        bool
	TokenExpiresAt   *time.Time
	LastLoginAt      time.Time
	CreatedAt        time.Time
}

const identityColumns = `i.id, i.tenant_id, t.name, i.user_id, i.issuer, i.subject, i.provider_tenant_id, i.object_id, i.email,
	i.display_name, i.access_token IS NOT NULL, i.token_expires_at, i.last_login_at, i.created_at`

func scanIdentity(row sqldb.Row) (*Identity, error) {
	var i Identity
	err := row.Scan(&i.ID, &i.TenantID, &i.TenantName, &i.UserID, &i.Issuer, &i.Subject, &i.ProviderTenantID, &i.ObjectID, &i.Email,
		&i.DisplayName, &i.HasTokens, &i.TokenExpiresAt, &i.LastLoginAt, &i.CreatedAt)
	if err != nil {
		return nil, err
	}
	return &i, nil
}

func findIdentity(ctx context.Context, q sqldb.Querier, tenantID, issuer, subject string) (*Identity, error) {
	return scanIdentity(q.QueryRow(ctx, `
		SELECT `+identityColumns+` FROM sso_identities i JOIN tenants t ON t.id = i.tenant_id
		WHERE i.tenant_id = $1 AND i.issuer = $2 AND i.subject = $3`, tenantID, issuer, subject))
}

func findUserIdentity(ctx context.Context, q sqldb.Querier, tenantID, userID string) (*Identity, error) {
	return scanIdentity(q.QueryRow(ctx, `
		SELECT `+identityColumns+` FROM sso_identities i JOIN tenants t ON t.id = i.tenant_id
		WHERE i.tenant_id = $1 AND i.user_id = $2`, tenantID, userID))
}

func listUserIdentities(ctx context.Context, q sqldb.Querier, userID string) ([]Identity, error) {
	rows, err := q.Query(ctx, `
		SELECT `+identityColumns+` FROM sso_identities i JOIN tenants t ON t.id = i.tenant_id
		WHERE i.user_id = $1 AND t.is_active AND t.provisioned_at IS NOT NULL
		ORDER BY i.last_login_at DESC, i.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Identity{}
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *i)
	}
	return out, rows.Err()
}

func insertIdentity(ctx context.Context, q sqldb.Querier, i *Identity) error {
	_, err := q.Exec(ctx, `
		INSERT INTO sso_identities (id, tenant_id, user_id, issuer, subject, provider_tenant_id, object_id, email, display_name,
			last_login_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
		i.ID, i.TenantID, i.UserID, i.Issuer, i.Subject, i.ProviderTenantID, i.ObjectID, i.Email, i.DisplayName, i.LastLoginAt, i.CreatedAt)
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return tenantry.Errorf(tenantry.EConflict, "The account is already linked to another identity of this tenant's provider")
	}
	return err
}

func touchIdentity(ctx context.Context, q sqldb.Querier, id, email, displayName string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE sso_identities SET email = $2, display_name = $3, last_login_at = $4, updated_at = $4 WHERE id = $1`,
		id, email, displayName, now)
	return err
}

func storeTokens(ctx context.Context, q sqldb.Querier, id string, access, refresh []byte, expires *time.Time, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE sso_identities SET access_token = $2, refresh_token = COALESCE($3, refresh_token), token_expires_at = $4, updated_at = $5
		WHERE id = $1`, id, access, refresh, expires, now)
	return err
}

func forgetTokens(ctx context.Context, q sqldb.Querier, tenantID, userID string, now time.Time) (int64, error) {
	if userID == "" {
		return q.Exec(ctx, `
			UPDATE sso_identities SET access_token = NULL, refresh_token = NULL, token_expires_at = NULL, updated_at = $2
			WHERE tenant_id = $1 AND access_token IS NOT NULL`, tenantID, now)
	}
	return q.Exec(ctx, `
		UPDATE sso_identities SET access_token = NULL, refresh_token = NULL, token_expires_at = NULL, updated_at = $3
		WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID, now)
}

func sealedTokens(ctx context.Context, q sqldb.Querier, tenantID, userID string) (id string, access, refresh []byte, expires *time.Time, err error) {
	err = q.QueryRow(ctx, `SELECT id, access_token, refresh_token, token_expires_at FROM sso_identities WHERE tenant_id = $1 AND user_id = $2`,
		tenantID, userID).Scan(&id, &access, &refresh, &expires)
	return
}

func countIdentities(ctx context.Context, q sqldb.Querier, tenantID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM sso_identities WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

func deleteIdentities(ctx context.Context, q sqldb.Querier, tenantID string) (int64, error) {
	return q.Exec(ctx, `DELETE FROM sso_identities WHERE tenant_id = $1`, tenantID)
}

// flowState is a sign-in in progress.
type flowState struct {
	stateHash    string
	tenantID     string
	browserHash  string
	nonce        string
	codeVerifier []byte // sealed
	redirectURI  string
	returnURL    string
	linkUserID   string
	expiresAt    time.Time
}

func insertState(ctx context.Context, q sqldb.Querier, stateHash string, f *flowState, now time.Time) error {
	_, err := q.Exec(ctx, `
		INSERT INTO sso_states (state_hash, tenant_id, browser_hash, nonce, code_verifier, redirect_uri, return_url, created_at, expires_at, link_user_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		stateHash, f.tenantID, f.browserHash, f.nonce, f.codeVerifier, f.redirectURI, f.returnURL, now, f.expiresAt, nullable(f.linkUserID))
	return err
}

// consumeState marks a state used and returns it, in one statement, so
// that of two callbacks bringing the same state only one gets it. A state
// that was used already, or never issued, returns ErrNoRows.
func consumeState(ctx context.Context, q sqldb.Querier, stateHash string, now time.Time) (*flowState, error) {
	f := flowState{stateHash: stateHash}
	err := q.QueryRow(ctx, `
		UPDATE sso_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL
		RETURNING tenant_id, browser_hash, nonce, code_verifier, redirect_uri, return_url, expires_at, COALESCE(link_user_id, '')`, stateHash, now).
		Scan(&f.tenantID, &f.browserHash, &f.nonce, &f.codeVerifier, &f.redirectURI, &f.returnURL, &f.expiresAt, &f.linkUserID)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// stateKnown reports whether a state was ever issued (and is kept still).
func stateKnown(ctx context.Context, q sqldb.Querier, stateHash string) (tenantID string, ok bool, err error) {
	err = q.QueryRow(ctx, `SELECT tenant_id FROM sso_states WHERE state_hash = $1`, stateHash).Scan(&tenantID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", false, nil
	}
	return tenantID, err == nil, err
}

func insertCode(ctx context.Context, q sqldb.Querier, codeHash, tenantID, userID string, now, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO sso_codes (code_hash, tenant_id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		codeHash, tenantID, userID, now, expires)
	return err
}

// consumeCode marks a one-time code used and returns whom it was for,
// only if it was unused and unexpired.
func consumeCode(ctx context.Context, q sqldb.Querier, codeHash string, now time.Time) (tenantID, userID string, err error) {
	err = q.QueryRow(ctx, `
		UPDATE sso_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2
		RETURNING tenant_id, user_id`, codeHash, now).Scan(&tenantID, &userID)
	return
}

// deleteExpiredFlows removes states and codes that can no longer be used.
func deleteExpiredFlows(ctx context.Context, q sqldb.Querier, before time.Time) (int64, error) {
	a, err := q.Exec(ctx, `DELETE FROM sso_states WHERE expires_at < $1`, before)
	if err != nil {
		return 0, err
	}
	b, err := q.Exec(ctx, `DELETE FROM sso_codes WHERE expires_at < $1`, before)
	return a + b, err
}
