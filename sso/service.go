package sso

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
)

// clockSkew is how far the provider's clock and ours may disagree when a
// token's exp and iat are checked.
const clockSkew = time.Minute

// Options configure the service.
type Options struct {
	// AzureAuthority is Entra's authority; DefaultAzureAuthority unless a
	// sovereign cloud's (or a test's).
	AzureAuthority string
	// GoogleIssuer is Google's issuer; DefaultGoogleIssuer unless a
	// test's.
	GoogleIssuer string
	// GraphURL is Microsoft Graph's base; DefaultGraphURL unless a test's.
	GraphURL string
	// DNSServer, "host:port", is the resolver domain proofs are looked up
	// with; the system's when empty.
	DNSServer string
	// HTTPClient talks to providers; one with a 10 s timeout when nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service implements single sign-on: configurations, sign-ins, identities
// and domains.
type Service struct {
	db        sqldb.DB
	keys      *keyring.Keyring
	tenants   *tenant.Service
	accounts  *account.Service
	streams   *outbox.Streams
	cfg       Options
	client    *http.Client
	providers *providers
	resolver  *net.Resolver
	logger    *slog.Logger
}

// NewService returns the single sign-on service. keys may be nil (the
// production shape without a master key or Vault): configurations, whose
// secrets must be sealed, are then refused with 503.
func NewService(db sqldb.DB, keys *keyring.Keyring, tenants *tenant.Service, accounts *account.Service, streams *outbox.Streams, opts Options) *Service {
	if opts.AzureAuthority == "" {
		opts.AzureAuthority = DefaultAzureAuthority
	}
	opts.AzureAuthority = strings.TrimSuffix(opts.AzureAuthority, "/")
	if opts.GoogleIssuer == "" {
		opts.GoogleIssuer = DefaultGoogleIssuer
	}
	if opts.GraphURL == "" {
		opts.GraphURL = DefaultGraphURL
	}
	opts.GraphURL = strings.TrimSuffix(opts.GraphURL, "/")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Service{db: db, keys: keys, tenants: tenants, accounts: accounts, streams: streams, cfg: opts, client: client,
		providers: newProviders(client), logger: opts.Logger}
	s.resolver = newResolver(opts.DNSServer)
	return s
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// AzureAuthority returns the Entra authority in use.
func (s *Service) AzureAuthority() string { return s.cfg.AzureAuthority }

var errNoKeys = tenantry.Errorf(tenantry.EUnavailable, "Stored secrets cannot be encrypted: no master key or key service is configured")

func secretAAD(configID string) keyring.AAD {
	return keyring.AAD{"table", tableConfigs, "column", "client_secret", "row", configID}
}

func (s *Service) seal(ctx context.Context, tenantID string, plain []byte, aad keyring.AAD) ([]byte, error) {
	if s.keys == nil {
		return nil, errNoKeys
	}
	return s.keys.Encrypt(ctx, tenantID, plain, aad)
}

func (s *Service) open(ctx context.Context, tenantID string, sealed []byte, aad keyring.AAD) ([]byte, error) {
	if s.keys == nil {
		return nil, errNoKeys
	}
	return s.keys.Decrypt(ctx, tenantID, sealed, aad)
}

// ConfigInput is a configuration to create or the changes to one; nil
// leaves a field as it is (or at its default, on creation).
type ConfigInput struct {
	ProviderType        *string
	ProviderTenantID    *string
	Issuer              *string
	HostedDomain        *string
	ClientID            *string
	ClientSecret        *string
	AllowedRedirectURLs *[]string
	Scopes              *[]string
	AutoProvisioning    *AutoProvisioning
	// Enabled enables (or, on update, disables) the configuration.
	Enabled *bool
}

func boundedText(errs tenantry.FieldErrors, field, v string, maxLen int, required bool) string {
	v = strings.TrimSpace(v)
	switch {
	case v == "" && required:
		errs.Add(field, "Missing data for required field.")
	case utf8.RuneCountInString(v) > maxLen:
		errs.Add(field, "Too long.")
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		errs.Add(field, "Must not contain control characters.")
	}
	return v
}

// apply merges in into c and checks the result. It returns the new client
// secret, if one was given.
func apply(c *Config, in ConfigInput, creating bool) (secret string, err error) {
	errs := tenantry.FieldErrors{}
	if in.ProviderType != nil {
		c.ProviderType = strings.TrimSpace(*in.ProviderType)
	}
	if c.ProviderType == "" {
		c.ProviderType = AzureAD
	}
	if in.ProviderTenantID != nil {
		c.ProviderTenantID = boundedText(errs, "provider_tenant_id", *in.ProviderTenantID, 255, false)
	}
	if in.Issuer != nil {
		c.Issuer = boundedText(errs, "issuer", *in.Issuer, 2048, false)
	}
	if in.HostedDomain != nil {
		c.HostedDomain = NormalizeDomain(boundedText(errs, "hosted_domain", *in.HostedDomain, 253, false))
	}
	if in.ClientID != nil {
		c.ClientID = boundedText(errs, "client_id", *in.ClientID, 255, true)
	} else if creating {
		errs.Add("client_id", "Missing data for required field.")
	}
	if in.ClientSecret != nil {
		secret = *in.ClientSecret
		if strings.TrimSpace(secret) == "" {
			errs.Add("client_secret", "Missing data for required field.")
		} else if len(secret) > 2048 {
			errs.Add("client_secret", "Too long.")
		}
	} else if creating {
		errs.Add("client_secret", "Missing data for required field.")
	}
	if in.AllowedRedirectURLs != nil {
		urls := []string{}
		for _, u := range *in.AllowedRedirectURLs {
			u = strings.TrimSpace(u)
			if msg := checkRedirectURL(u); msg != "" {
				errs.Add("allowed_redirect_urls", msg)
				continue
			}
			urls = append(urls, u)
		}
		if len(urls) > 20 {
			errs.Add("allowed_redirect_urls", "At most 20 URLs.")
		}
		c.AllowedRedirectURLs = urls
	}
	if in.Scopes != nil {
		scopes := []string{}
		for _, sc := range *in.Scopes {
			sc = strings.TrimSpace(sc)
			if sc == "" || len(sc) > 255 || strings.ContainsFunc(sc, func(r rune) bool { return r <= 0x20 || r == 0x7f || r == '"' || r == '\\' }) {
				errs.Add("scopes", "Each scope must be 1 to 255 printable characters without spaces.")
				continue
			}
			if sc != "openid" {
				scopes = append(scopes, sc)
			}
		}
		if len(scopes) > 30 {
			errs.Add("scopes", "At most 30 scopes.")
		}
		c.Scopes = scopes
	}
	if in.AutoProvisioning != nil {
		a := *in.AutoProvisioning
		a.validate(errs, "auto_provisioning")
		c.AutoProvisioning = a
	}
	checkProvider(errs, c)
	return secret, errs.Err()
}

// checkProvider checks that a configuration names its provider in the way
// its type requires.
func checkProvider(errs tenantry.FieldErrors, c *Config) {
	switch c.ProviderType {
	case AzureAD:
		switch {
		case c.ProviderTenantID == "":
			errs.Add("provider_tenant_id", "Required for azure_ad: the directory's id (a GUID) or one of its verified domains.")
		case isGUID(c.ProviderTenantID):
			c.ProviderTenantID = strings.ToLower(c.ProviderTenantID)
		case ValidDomain(strings.ToLower(c.ProviderTenantID)):
			c.ProviderTenantID = strings.ToLower(c.ProviderTenantID)
		default:
			// "common", "organizations" and "consumers" land here: a
			// tenant's sign-in is bound to one directory.
			errs.Add("provider_tenant_id", "Must be a directory id (GUID) or a domain such as contoso.onmicrosoft.com; multi-tenant authorities such as common are not accepted.")
		}
		if c.Issuer != "" {
			errs.Add("issuer", "Not used with azure_ad: the issuer follows from the directory.")
		}
	case Google:
		if c.HostedDomain != "" && !ValidDomain(c.HostedDomain) {
			errs.Add("hosted_domain", "Must be a domain name, such as example.com.")
		}
		if c.Issuer != "" || c.ProviderTenantID != "" {
			errs.Add("issuer", "Not used with google.")
		}
	case OIDC:
		if c.Issuer == "" {
			errs.Add("issuer", "Required for oidc: the provider's issuer URL.")
		} else if msg := CheckIssuerURL(c.Issuer); msg != "" {
			errs.Add("issuer", msg)
		}
		if c.ProviderTenantID != "" {
			errs.Add("provider_tenant_id", "Not used with oidc.")
		}
	default:
		errs.Add("provider_type", "Must be one of: azure_ad, google, oidc.")
	}
}

// configChanged records a configuration change in the event stream and the
// audit entry, never with the secret.
func (s *Service) configChanged(ctx context.Context, tx sqldb.Tx, action string, c *Config, secretChanged bool) error {
	after := map[string]any{
		"provider_type": c.ProviderType, "provider_tenant_id": c.ProviderTenantID, "issuer": c.Issuer, "hosted_domain": c.HostedDomain,
		"client_id": c.ClientID, "scopes": c.Scopes, "is_enabled": c.IsEnabled, "auth_method": c.AuthMethod, "allowed_redirect_urls": c.AllowedRedirectURLs,
		"auto_provisioning": c.AutoProvisioning,
	}
	audit.Annotate(ctx, "after", after)
	if secretChanged {
		audit.Annotate(ctx, "client_secret_changed", true)
	}
	return s.streams.EmitPlatform(ctx, tx, tenantry.EventSSOConfigChanged, c.TenantID, principalID(ctx), map[string]any{
		"tenant_id": c.TenantID, "action": action, "config": after, "client_secret_changed": secretChanged,
	})
}

func principalID(ctx context.Context) string {
	p, _ := tenantry.PrincipalFromContext(ctx)
	return p.UserID
}

// GetConfig returns a tenant's configuration. Admins only.
func (s *Service) GetConfig(ctx context.Context, tenantID string) (*Config, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	return findConfig(ctx, s.db, tenantID)
}

// CreateConfig creates a tenant's configuration. Admins only. Enabling it
// at once lets members sign in either way (both) when the tenant signed in
// by password only.
func (s *Service) CreateConfig(ctx context.Context, tenantID string, in ConfigInput) (*Config, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	now := sqldb.Now()
	c := &Config{ID: uuid.NewString(), TenantID: tenantID, AutoProvisioning: DefaultAutoProvisioning(), AllowedRedirectURLs: []string{},
		CreatedAt: now, UpdatedAt: now, CreatedBy: principalID(ctx)}
	secret, err := apply(c, in, true)
	if err != nil {
		return nil, err
	}
	sealed, err := s.seal(ctx, tenantID, []byte(secret), secretAAD(c.ID))
	if err != nil {
		return nil, err
	}
	c.IsEnabled = in.Enabled != nil && *in.Enabled
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if _, err := findConfig(ctx, tx, tenantID); err == nil {
			return tenantry.Errorf(tenantry.EConflict, "The tenant already has an SSO configuration. Delete the existing configuration before creating a new one.")
		}
		if err := insertConfig(ctx, tx, c, sealed); err != nil {
			return err
		}
		cur, err := findConfig(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		c.AuthMethod = cur.AuthMethod
		if c.IsEnabled && c.AuthMethod == tenantry.AuthLocal {
			c.AuthMethod = tenantry.AuthBoth
			if err := setAuthMethod(ctx, tx, tenantID, c.AuthMethod, now); err != nil {
				return err
			}
		}
		return s.configChanged(ctx, tx, "created", c, true)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	c.HasClientSecret = true
	return c, nil
}

// UpdateConfig changes a tenant's configuration. Admins only. Disabling it
// returns the tenant to passwords; enabling it lets members sign in either
// way when they signed in by password only.
func (s *Service) UpdateConfig(ctx context.Context, tenantID string, in ConfigInput) (*Config, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	secret, err := apply(c, in, false)
	if err != nil {
		return nil, err
	}
	var sealed []byte
	if in.ClientSecret != nil {
		if sealed, err = s.seal(ctx, tenantID, []byte(secret), secretAAD(c.ID)); err != nil {
			return nil, err
		}
	}
	now := sqldb.Now()
	c.UpdatedAt = now
	if in.Enabled != nil {
		c.IsEnabled = *in.Enabled
		switch {
		case c.IsEnabled && c.AuthMethod == tenantry.AuthLocal:
			c.AuthMethod = tenantry.AuthBoth
		case !c.IsEnabled:
			c.AuthMethod = tenantry.AuthLocal
		}
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := updateConfig(ctx, tx, c, sealed); err != nil {
			return err
		}
		if err := setAuthMethod(ctx, tx, tenantID, c.AuthMethod, now); err != nil {
			return err
		}
		return s.configChanged(ctx, tx, "updated", c, sealed != nil)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return c, nil
}

// DeleteConfig deletes a tenant's configuration and returns the tenant to
// passwords. Identities linked to it make it a conflict unless force, which
// deletes them too. Admins only.
func (s *Service) DeleteConfig(ctx context.Context, tenantID string, force bool) error {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return err
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		n, err := countIdentities(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		if n > 0 && !force {
			return &tenantry.Error{Code: tenantry.EConflict,
				Message: "Cannot delete the SSO configuration: users have identities at its provider. Use force=true to delete them too.",
				Details: map[string]any{"identities": n}}
		}
		if _, err := deleteIdentities(ctx, tx, tenantID); err != nil {
			return err
		}
		if err := deleteConfig(ctx, tx, tenantID); err != nil {
			return err
		}
		if err := setAuthMethod(ctx, tx, tenantID, tenantry.AuthLocal, sqldb.Now()); err != nil {
			return err
		}
		audit.Annotate(ctx, "identities_deleted", n)
		c.IsEnabled, c.AuthMethod = false, tenantry.AuthLocal
		return s.configChanged(ctx, tx, "deleted", c, false)
	})
	if err == nil {
		s.streams.Committed()
	}
	return err
}

// Enable enables a tenant's configuration and sets how its members sign
// in: sso (only through the provider) or both. Admins only.
func (s *Service) Enable(ctx context.Context, tenantID, authMethod string) (*Config, error) {
	if authMethod == "" {
		authMethod = tenantry.AuthBoth
	}
	if authMethod != tenantry.AuthSSO && authMethod != tenantry.AuthBoth {
		return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"auth_method": {"Must be sso or both."}}}
	}
	return s.setEnabled(ctx, tenantID, true, authMethod, true)
}

// Disable disables a tenant's configuration: members sign in with
// passwords again. Unless keepTokens, the provider tokens stored for its
// identities are forgotten. Admins only.
func (s *Service) Disable(ctx context.Context, tenantID string, keepTokens bool) (*Config, error) {
	return s.setEnabled(ctx, tenantID, false, tenantry.AuthLocal, keepTokens)
}

func (s *Service) setEnabled(ctx context.Context, tenantID string, enabled bool, authMethod string, keepTokens bool) (*Config, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	if enabled {
		errs := tenantry.FieldErrors{}
		checkProvider(errs, c)
		if errs.Err() != nil {
			return nil, tenantry.Errorf(tenantry.EBadRequest, "Cannot enable SSO: the configuration is invalid")
		}
	}
	now := sqldb.Now()
	c.IsEnabled, c.AuthMethod, c.UpdatedAt = enabled, authMethod, now
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := updateConfig(ctx, tx, c, nil); err != nil {
			return err
		}
		if err := setAuthMethod(ctx, tx, tenantID, authMethod, now); err != nil {
			return err
		}
		if !keepTokens {
			n, err := forgetTokens(ctx, tx, tenantID, "", now)
			if err != nil {
				return err
			}
			audit.Annotate(ctx, "provider_tokens_forgotten", n)
		}
		action := "disabled"
		if enabled {
			action = "enabled"
		}
		return s.configChanged(ctx, tx, action, c, false)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return c, nil
}

// SetAutoProvisioning replaces a tenant's auto-provisioning settings.
// Admins only.
func (s *Service) SetAutoProvisioning(ctx context.Context, tenantID string, a AutoProvisioning) (*Config, error) {
	return s.UpdateConfig(ctx, tenantID, ConfigInput{AutoProvisioning: &a})
}

// Validation is what checking a configuration against its provider found.
type Validation struct {
	Valid            bool
	Error            string
	Issuer           string
	AuthorizationURL string
	TokenURL         string
	JWKSURL          string
	Keys             int
	// Directory is Entra's directory id, as its issuer names it.
	Directory string
}

// Validate checks a tenant's configuration: its fields, then its
// provider's discovery document and key set, fetched afresh. What is wrong
// is said in the result, not as an error. Admins only.
func (s *Service) Validate(ctx context.Context, tenantID string) (*Validation, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if errors.Is(err, errNoConfig) {
		return &Validation{Error: "No SSO configuration found"}, nil
	} else if err != nil {
		return nil, err
	}
	errs := tenantry.FieldErrors{}
	checkProvider(errs, c)
	if errs.Err() != nil {
		return &Validation{Error: "The configuration is invalid"}, nil
	}
	wellKnown, expected := s.discoveryURL(c)
	p, err := s.discover(ctx, c, wellKnown, expected)
	if msg, ok := isDiscoveryError(err); ok {
		return &Validation{Error: msg}, nil
	} else if err != nil {
		return nil, err
	}
	v := &Validation{Issuer: p.doc.Issuer, AuthorizationURL: p.doc.AuthURL, TokenURL: p.doc.TokenURL, JWKSURL: p.doc.JWKSURL, Directory: p.directory}
	if v.Keys, err = s.checkKeys(ctx, p.doc.JWKSURL); err != nil {
		if msg, ok := isDiscoveryError(err); ok {
			v.Error = msg
			return v, nil
		}
		return nil, err
	}
	if _, _, err := s.clientSecret(ctx, tenantID); err != nil {
		if errors.Is(err, keyring.ErrDecrypt) {
			v.Error = "The stored client secret cannot be decrypted: set it again"
			return v, nil
		}
		return nil, err
	}
	s.providers.put(wellKnown+"\x00"+c.ClientID, p)
	v.Valid = true
	return v, nil
}

func (s *Service) clientSecret(ctx context.Context, tenantID string) (string, string, error) {
	id, sealed, err := findSecret(ctx, s.db, tenantID)
	if err != nil {
		return "", "", err
	}
	plain, err := s.open(ctx, tenantID, sealed, secretAAD(id))
	if err != nil {
		return "", "", err
	}
	return id, string(plain), nil
}

// Statistics is what a tenant's single sign-on has been used for.
type Statistics struct {
	Config          *Config
	TotalUsers      int64
	ActiveTokens    int64
	ExpiredTokens   int64
	RecentLogins30d int64
	RecentLogins    []RecentLogin
}

// RecentLogin is one of the latest sign-ins.
type RecentLogin struct {
	UserID      string
	Email       string
	LastLoginAt time.Time
}

// Statistics returns a tenant's single sign-on statistics. Admins only.
func (s *Service) Statistics(ctx context.Context, tenantID string) (*Statistics, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	now := sqldb.Now()
	st := &Statistics{Config: c, RecentLogins: []RecentLogin{}}
	err = s.db.QueryRow(ctx, `
		SELECT count(*),
		       COALESCE(SUM(CASE WHEN access_token IS NOT NULL AND token_expires_at > $2 THEN 1 ELSE 0 END), 0),
		       COALESCE(SUM(CASE WHEN access_token IS NOT NULL AND token_expires_at <= $2 THEN 1 ELSE 0 END), 0),
		       COALESCE(SUM(CASE WHEN last_login_at > $3 THEN 1 ELSE 0 END), 0)
		FROM sso_identities WHERE tenant_id = $1`, tenantID, now, now.Add(-30*24*time.Hour)).
		Scan(&st.TotalUsers, &st.ActiveTokens, &st.ExpiredTokens, &st.RecentLogins30d)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `
		SELECT i.user_id, u.email, i.last_login_at FROM sso_identities i JOIN users u ON u.id = i.user_id
		WHERE i.tenant_id = $1 ORDER BY i.last_login_at DESC, i.id `+sqldb.Limit(10), tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r RecentLogin
		if err := rows.Scan(&r.UserID, &r.Email, &r.LastLoginAt); err != nil {
			return nil, err
		}
		st.RecentLogins = append(st.RecentLogins, r)
	}
	return st, rows.Err()
}

// ListConfigs lists every tenant's configuration. Platform administrators
// only.
func (s *Service) ListConfigs(ctx context.Context, onlyEnabled bool) ([]ConfigSummary, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	if !p.PlatformAdmin {
		return nil, tenantry.Errorf(tenantry.EForbidden, "Platform administrator role required")
	}
	return listConfigs(ctx, s.db, onlyEnabled)
}

// Identities lists the caller's identities, one per tenant.
func (s *Service) Identities(ctx context.Context) ([]Identity, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	return listUserIdentities(ctx, s.db, p.UserID)
}

// DeleteExpiredFlows removes sign-in states and one-time codes past use.
func (s *Service) DeleteExpiredFlows(ctx context.Context) (int64, error) {
	return deleteExpiredFlows(ctx, s.db, s.now().Add(-time.Hour))
}
