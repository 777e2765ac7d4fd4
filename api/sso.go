package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sso"
)

// ssoCookie binds a sign-in to the browser that started it. The __Host-
// prefix makes browsers keep it only if it is Secure, host-only and for
// the whole path, so no sibling domain can plant one.
const ssoCookie = "__Host-tenantry-sso"

// callbackPath is where providers send browsers back.
const callbackPath = "/api/auth/sso/callback"

// AutoProvisioningView is how a tenant's sign-ins are provisioned.
type AutoProvisioningView struct {
	Enabled               bool              `json:"enabled" doc:"Create accounts and memberships for people the provider vouches for."`
	DefaultRole           string            `json:"default_role" enum:"admin,user,viewer" doc:"Role of a member no group maps."`
	SyncAttributesOnLogin bool              `json:"sync_attributes_on_login" doc:"Update names from the provider at each sign-in."`
	AllowedEmailDomains   []string          `json:"allowed_email_domains" doc:"When not empty, only these exact domains may sign in."`
	AllowedAzureGroups    []string          `json:"allowed_azure_groups" doc:"When not empty, one of these groups (ids or names) is required."`
	GroupRoleMapping      map[string]string `json:"group_role_mapping" doc:"Group id or name to role; the highest wins. Applied at every sign-in."`
}

// autoProvisioningInput is the body that sets auto-provisioning.
type autoProvisioningInput struct {
	Enabled               *bool             `json:"enabled,omitempty"`
	DefaultRole           string            `json:"default_role,omitempty" doc:"admin, user or viewer; viewer by default."`
	SyncAttributesOnLogin *bool             `json:"sync_attributes_on_login,omitempty" doc:"true by default."`
	AllowedEmailDomains   []string          `json:"allowed_email_domains,omitempty" maxItems:"100"`
	AllowedAzureGroups    []string          `json:"allowed_azure_groups,omitempty" maxItems:"500"`
	GroupRoleMapping      map[string]string `json:"group_role_mapping,omitempty"`
}

func (in *autoProvisioningInput) model() *sso.AutoProvisioning {
	if in == nil {
		return nil
	}
	a := sso.DefaultAutoProvisioning()
	if in.Enabled != nil {
		a.Enabled = *in.Enabled
	}
	if in.DefaultRole != "" {
		a.DefaultRole = tenantry.Role(in.DefaultRole)
	}
	if in.SyncAttributesOnLogin != nil {
		a.SyncAttributesOnLogin = *in.SyncAttributesOnLogin
	}
	if in.AllowedEmailDomains != nil {
		a.AllowedEmailDomains = in.AllowedEmailDomains
	}
	if in.AllowedAzureGroups != nil {
		a.AllowedAzureGroups = in.AllowedAzureGroups
	}
	for g, r := range in.GroupRoleMapping {
		a.GroupRoleMapping[g] = tenantry.Role(r)
	}
	return &a
}

// SSOConfigView is a tenant's single sign-on configuration. The client
// secret is never shown.
type SSOConfigView struct {
	ID                  string               `json:"id" format:"uuid"`
	TenantID            string               `json:"tenant_id" format:"uuid"`
	ProviderType        string               `json:"provider_type" enum:"azure_ad,google,oidc"`
	ProviderTenantID    string               `json:"provider_tenant_id" doc:"Entra directory id or verified domain; empty for other providers."`
	Issuer              string               `json:"issuer" doc:"The provider's issuer URL (oidc); empty for others."`
	HostedDomain        string               `json:"hosted_domain" doc:"Google Workspace domain required of sign-ins; empty for none."`
	ClientID            string               `json:"client_id"`
	HasClientSecret     bool                 `json:"has_client_secret" doc:"Whether a client secret is stored. The secret itself is write-only."`
	RedirectURI         string               `json:"redirect_uri" doc:"The callback URL to register at the provider."`
	AllowedRedirectURLs []string             `json:"allowed_redirect_urls" doc:"Where a sign-in may send the browser back (return_url)."`
	Scopes              []string             `json:"scopes" doc:"Scopes requested besides openid; the provider type's defaults when empty."`
	IsEnabled           bool                 `json:"is_enabled"`
	AuthMethod          string               `json:"auth_method" enum:"local,sso,both" doc:"How the tenant's members sign in."`
	AutoProvisioning    AutoProvisioningView `json:"auto_provisioning"`
	AuthorityURL        string               `json:"authority_url,omitempty" doc:"Entra only: the directory's authority."`
	LoginURL            string               `json:"login_url" doc:"Where members start a sign-in."`
	CreatedAt           time.Time            `json:"created_at"`
	UpdatedAt           time.Time            `json:"updated_at"`
	CreatedBy           *string              `json:"created_by" format:"uuid"`
}

func viewAutoProvisioning(a sso.AutoProvisioning) AutoProvisioningView {
	m := make(map[string]string, len(a.GroupRoleMapping))
	for g, r := range a.GroupRoleMapping {
		m[g] = string(r)
	}
	return AutoProvisioningView{Enabled: a.Enabled, DefaultRole: string(a.DefaultRole), SyncAttributesOnLogin: a.SyncAttributesOnLogin,
		AllowedEmailDomains: a.AllowedEmailDomains, AllowedAzureGroups: a.AllowedAzureGroups, GroupRoleMapping: m}
}

func (s *Server) viewSSOConfig(ctx context.Context, c *sso.Config) SSOConfigView {
	v := SSOConfigView{
		ID: c.ID, TenantID: c.TenantID, ProviderType: c.ProviderType, ProviderTenantID: c.ProviderTenantID, Issuer: c.Issuer,
		HostedDomain: c.HostedDomain, ClientID: c.ClientID, HasClientSecret: c.HasClientSecret,
		RedirectURI: s.publicBase(ctx) + callbackPath, AllowedRedirectURLs: c.AllowedRedirectURLs, Scopes: c.Scopes,
		IsEnabled: c.IsEnabled, AuthMethod: c.AuthMethod, AutoProvisioning: viewAutoProvisioning(c.AutoProvisioning),
		LoginURL:  "/api/auth/sso/login/" + c.TenantID,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(), CreatedBy: nullIfEmpty(c.CreatedBy),
	}
	if v.AllowedRedirectURLs == nil {
		v.AllowedRedirectURLs = []string{}
	}
	if v.Scopes == nil {
		v.Scopes = []string{}
	}
	if c.ProviderType == sso.AzureAD {
		v.AuthorityURL = s.svc.SSO.AzureAuthority() + "/" + c.ProviderTenantID
	}
	return v
}

// SSOConfigBody is a configuration to create, or the changes to one. It is
// exported because huma documents the fields of exported embedded structs
// only.
type SSOConfigBody struct {
	ProviderType        *string                `json:"provider_type,omitempty" enum:"azure_ad,google,oidc" doc:"azure_ad by default."`
	ProviderTenantID    *string                `json:"provider_tenant_id,omitempty" maxLength:"255" doc:"azure_ad: the directory's id (GUID) or a verified domain such as contoso.onmicrosoft.com."`
	Issuer              *string                `json:"issuer,omitempty" maxLength:"2048" doc:"oidc: the provider's issuer URL, https (plain http only on a loopback address)."`
	HostedDomain        *string                `json:"hosted_domain,omitempty" maxLength:"253" doc:"google: the Workspace domain sign-ins must belong to."`
	ClientID            *string                `json:"client_id,omitempty" maxLength:"255"`
	ClientSecret        *string                `json:"client_secret,omitempty" maxLength:"2048" doc:"Write-only: stored encrypted, never returned."`
	AllowedRedirectURLs *[]string              `json:"allowed_redirect_urls,omitempty" maxItems:"20"`
	Scopes              *[]string              `json:"scopes,omitempty" maxItems:"30"`
	AutoProvisioning    *autoProvisioningInput `json:"auto_provisioning,omitempty"`
}

func (b *SSOConfigBody) input() sso.ConfigInput {
	return sso.ConfigInput{ProviderType: b.ProviderType, ProviderTenantID: b.ProviderTenantID, Issuer: b.Issuer, HostedDomain: b.HostedDomain,
		ClientID: b.ClientID, ClientSecret: b.ClientSecret, AllowedRedirectURLs: b.AllowedRedirectURLs, Scopes: b.Scopes,
		AutoProvisioning: b.AutoProvisioning.model()}
}

type createSSOConfigInput struct {
	TenantPath
	Body struct {
		SSOConfigBody
		Enable bool `json:"enable,omitempty" doc:"Enable at once: members may then sign in either way (both)."`
	}
}

type updateSSOConfigInput struct {
	TenantPath
	Body struct {
		SSOConfigBody
		IsEnabled *bool `json:"is_enabled,omitempty" doc:"false returns the tenant to passwords."`
	}
}

type deleteSSOConfigInput struct {
	TenantPath
	Force bool `query:"force" doc:"Also delete the identities linked to the configuration."`
}

type enableSSOInput struct {
	TenantPath
	Body struct {
		AuthMethod string `json:"auth_method" enum:"sso,both" doc:"sso: members sign in only through the provider; both: either way."`
	}
}

type disableSSOInput struct {
	TenantPath
	Body *struct {
		KeepAzureIdentities *bool `json:"keep_azure_identities,omitempty" doc:"false also forgets the provider tokens stored for identities; true by default."`
	}
}

type autoProvisioningPut struct {
	TenantPath
	Body autoProvisioningInput
}

type ssoValidationView struct {
	Valid            bool    `json:"valid"`
	Error            *string `json:"error" doc:"What is wrong; null when valid."`
	Issuer           string  `json:"issuer,omitempty"`
	AuthorizationURL string  `json:"authorization_url,omitempty"`
	TokenURL         string  `json:"token_url,omitempty"`
	JWKSURI          string  `json:"jwks_uri,omitempty"`
	Keys             int     `json:"keys,omitempty" doc:"Signing keys the provider publishes."`
	Directory        string  `json:"directory,omitempty" doc:"Entra only: the directory id its issuer names."`
}

type ssoStatisticsView struct {
	Configuration struct {
		ProviderType            string `json:"provider_type"`
		IsEnabled               bool   `json:"is_enabled"`
		ClientID                string `json:"client_id"`
		ProviderTenantID        string `json:"provider_tenant_id"`
		AutoProvisioningEnabled bool   `json:"auto_provisioning_enabled"`
	} `json:"configuration"`
	Usage struct {
		TotalSSOUsers   int64 `json:"total_sso_users"`
		ActiveTokens    int64 `json:"active_tokens"`
		ExpiredTokens   int64 `json:"expired_tokens"`
		RecentLogins30d int64 `json:"recent_logins_30d"`
	} `json:"usage"`
	RecentLogins []ssoRecentLogin `json:"recent_logins"`
}

type ssoRecentLogin struct {
	UserID      string    `json:"user_id" format:"uuid"`
	UserEmail   string    `json:"user_email"`
	LastLoginAt time.Time `json:"last_login_at"`
}

type ssoConfigSummary struct {
	TenantID         string    `json:"tenant_id" format:"uuid"`
	TenantName       string    `json:"tenant_name"`
	ProviderType     string    `json:"provider_type"`
	ProviderTenantID string    `json:"provider_tenant_id"`
	Issuer           string    `json:"issuer"`
	ClientID         string    `json:"client_id"`
	IsEnabled        bool      `json:"is_enabled"`
	AuthMethod       string    `json:"auth_method"`
	CreatedAt        time.Time `json:"created_at"`
}

type ssoConfigList struct {
	Configurations []ssoConfigSummary `json:"configurations"`
}

type listSSOConfigsInput struct {
	OnlyEnabled bool `query:"only_enabled"`
}

func (s *Server) registerSSOConfig() {
	tags := []string{"Single sign-on"}
	base := "/api/tenants/{tenant_id}/sso/config"
	errs := []int{http.StatusBadRequest, http.StatusNotFound}

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "get-sso-config", Method: http.MethodGet, Path: base, Tags: tags,
		Summary:     "The tenant's single sign-on configuration (admins)",
		Description: "The client secret is never returned: has_client_secret says whether one is stored.",
		Errors:      errs,
	}), func(ctx context.Context, in *TenantPath) (*response[SSOConfigView], error) {
		c, err := s.svc.SSO.GetConfig(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		return ok("SSO configuration retrieved successfully", s.viewSSOConfig(ctx, c)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "create-sso-config", Method: http.MethodPost, Path: base, Tags: tags,
		Summary: "Configure single sign-on for the tenant (admins)",
		Description: "provider_type azure_ad (Microsoft Entra ID; provider_tenant_id required), google (optional hosted_domain) or oidc " +
			"(issuer required). Issuers must be https, except on loopback addresses. The client secret is stored encrypted and never returned. " +
			"A tenant has one configuration: a second is a conflict (409).",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *createSSOConfigInput) (*response[SSOConfigView], error) {
		input := in.Body.input()
		input.Enabled = &in.Body.Enable
		c, err := s.svc.SSO.CreateConfig(ctx, in.id(ctx), input)
		if err != nil {
			return nil, err
		}
		return created("SSO configuration created successfully", s.viewSSOConfig(ctx, c)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "update-sso-config", Method: http.MethodPut, Path: base, Tags: tags,
		Summary:     "Change the tenant's single sign-on configuration (admins)",
		Description: "Fields left out are unchanged; a client_secret given replaces the stored one. is_enabled false returns the tenant to passwords.",
		Errors:      errs,
	}), func(ctx context.Context, in *updateSSOConfigInput) (*response[SSOConfigView], error) {
		input := in.Body.input()
		input.Enabled = in.Body.IsEnabled
		c, err := s.svc.SSO.UpdateConfig(ctx, in.id(ctx), input)
		if err != nil {
			return nil, err
		}
		return ok("SSO configuration updated successfully", s.viewSSOConfig(ctx, c)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "delete-sso-config", Method: http.MethodDelete, Path: base, Tags: tags,
		Summary:     "Delete the tenant's single sign-on configuration (admins)",
		Description: "The tenant returns to passwords. Identities linked to the configuration make it a conflict (409) unless force=true, which deletes them.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *deleteSSOConfigInput) (*response[*noData], error) {
		if err := s.svc.SSO.DeleteConfig(ctx, in.id(ctx), in.Force); err != nil {
			return nil, err
		}
		return done("SSO configuration deleted successfully"), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "enable-sso-config", Method: http.MethodPost, Path: base + "/enable", Tags: tags,
		Summary:     "Enable single sign-on (admins)",
		Description: "auth_method sso enforces it: sessions opened with a password may list the tenant but get 403 SSO_REQUIRED on its routes; both allows either way.",
		Errors:      errs,
	}), func(ctx context.Context, in *enableSSOInput) (*response[SSOConfigView], error) {
		c, err := s.svc.SSO.Enable(ctx, in.id(ctx), in.Body.AuthMethod)
		if err != nil {
			return nil, err
		}
		return ok("SSO enabled successfully", s.viewSSOConfig(ctx, c)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "disable-sso-config", Method: http.MethodPost, Path: base + "/disable", Tags: tags,
		Summary:     "Disable single sign-on (admins)",
		Description: "Members sign in with passwords again. keep_azure_identities false also forgets the stored provider tokens.",
		Errors:      errs,
	}), func(ctx context.Context, in *disableSSOInput) (*response[SSOConfigView], error) {
		keep := true
		if in.Body != nil && in.Body.KeepAzureIdentities != nil {
			keep = *in.Body.KeepAzureIdentities
		}
		c, err := s.svc.SSO.Disable(ctx, in.id(ctx), keep)
		if err != nil {
			return nil, err
		}
		return ok("SSO disabled successfully", s.viewSSOConfig(ctx, c)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "validate-sso-config", Method: http.MethodGet, Path: base + "/validate", Tags: tags,
		Summary:     "Check the configuration against its provider (admins)",
		Description: "Fetches the provider's discovery document and key set afresh and says what is wrong, with status 200 either way.",
		Errors:      errs,
	}), func(ctx context.Context, in *TenantPath) (*response[ssoValidationView], error) {
		v, err := s.svc.SSO.Validate(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		return ok("SSO configuration checked", ssoValidationView{Valid: v.Valid, Error: nullIfEmpty(v.Error), Issuer: v.Issuer,
			AuthorizationURL: v.AuthorizationURL, TokenURL: v.TokenURL, JWKSURI: v.JWKSURL, Keys: v.Keys, Directory: v.Directory}), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "set-sso-auto-provisioning", Method: http.MethodPut, Path: base + "/auto-provisioning", Tags: tags,
		Summary: "Set who enters through single sign-on, with what role (admins)",
		Description: "Replaces the auto-provisioning settings. Roles (group_role_mapping, default_role) are applied at every sign-in, so " +
			"leaving a group in the directory lowers the role at the next sign-in. Domains match exactly.",
		Errors: errs,
	}), func(ctx context.Context, in *autoProvisioningPut) (*response[SSOConfigView], error) {
		c, err := s.svc.SSO.SetAutoProvisioning(ctx, in.id(ctx), *in.Body.model())
		if err != nil {
			return nil, err
		}
		return ok("Auto-provisioning updated successfully", s.viewSSOConfig(ctx, c)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "get-sso-statistics", Method: http.MethodGet, Path: "/api/tenants/{tenant_id}/sso/statistics", Tags: tags,
		Summary:     "How the tenant's single sign-on is used (admins)",
		Description: "Identities, stored provider tokens and recent sign-ins through the tenant's provider.",
		Errors:      errs,
	}), func(ctx context.Context, in *TenantPath) (*response[ssoStatisticsView], error) {
		st, err := s.svc.SSO.Statistics(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		var v ssoStatisticsView
		c := st.Config
		v.Configuration.ProviderType, v.Configuration.IsEnabled, v.Configuration.ClientID = c.ProviderType, c.IsEnabled, c.ClientID
		v.Configuration.ProviderTenantID, v.Configuration.AutoProvisioningEnabled = c.ProviderTenantID, c.AutoProvisioning.Enabled
		v.Usage.TotalSSOUsers, v.Usage.ActiveTokens, v.Usage.ExpiredTokens, v.Usage.RecentLogins30d = st.TotalUsers, st.ActiveTokens, st.ExpiredTokens, st.RecentLogins30d
		v.RecentLogins = make([]ssoRecentLogin, len(st.RecentLogins))
		for i, r := range st.RecentLogins {
			v.RecentLogins[i] = ssoRecentLogin{UserID: r.UserID, UserEmail: r.Email, LastLoginAt: r.LastLoginAt.UTC()}
		}
		return ok("SSO statistics retrieved successfully", v), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-sso-configs", Method: http.MethodGet, Path: "/api/tenants/sso/configs", Tags: tags,
		Summary:     "Every tenant's single sign-on configuration (platform administrators)",
		Description: "Anyone else gets 403 FORBIDDEN.",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *listSSOConfigsInput) (*response[ssoConfigList], error) {
		l, err := s.svc.SSO.ListConfigs(ctx, in.OnlyEnabled)
		if err != nil {
			return nil, err
		}
		out := ssoConfigList{Configurations: make([]ssoConfigSummary, len(l))}
		for i, c := range l {
			out.Configurations[i] = ssoConfigSummary{TenantID: c.TenantID, TenantName: c.TenantName, ProviderType: c.ProviderType,
				ProviderTenantID: c.ProviderTenantID, Issuer: c.Issuer, ClientID: c.ClientID, IsEnabled: c.IsEnabled, AuthMethod: c.AuthMethod,
				CreatedAt: c.CreatedAt.UTC()}
		}
		return ok("SSO configurations retrieved successfully", out), nil
	})
}

// SSOLoginView is the answer of a completed sign-in: the usual login
// answer, with the tenant signed in to and auth_method sso.
type SSOLoginView struct {
	TokensView
	User       UserView      `json:"user"`
	Tenants    []loginTenant `json:"tenants" doc:"Active tenants the user belongs to, with the user's role in each."`
	TenantID   string        `json:"tenant_id" format:"uuid" doc:"The tenant whose single sign-on was used."`
	AuthMethod string        `json:"auth_method" enum:"sso"`
}

func (s *Server) ssoLogin(ctx context.Context, c *sso.Completed) (SSOLoginView, error) {
	memberships, err := s.svc.Tenants.ListFor(ctx, c.UserID)
	if err != nil {
		return SSOLoginView{}, err
	}
	ts := make([]loginTenant, len(memberships))
	for i, m := range memberships {
		ts[i] = loginTenant{ID: m.ID, Name: m.Name, DatabaseName: m.DatabaseName, Role: string(m.Role)}
	}
	if info := infoFrom(ctx); info != nil {
		info.userID = c.UserID
	}
	return SSOLoginView{TokensView: tokens(c.Login.Tokens), User: viewUser(c.Login.User), Tenants: ts, TenantID: c.TenantID, AuthMethod: "sso"}, nil
}

type ssoLoginInput struct {
	TenantPath
	ReturnURL string `query:"return_url" maxLength:"2048" doc:"Where to send the browser back, with a one-time code; must start with one of the tenant's allowed_redirect_urls."`
	LoginHint string `query:"login_hint" maxLength:"255" doc:"Passed to the provider to preselect an account."`
	Cookie    string `cookie:"__Host-tenantry-sso" doc:"The browser's sign-in cookie, when it has one."`
}

type ssoCallbackInput struct {
	State            string `query:"state" maxLength:"512"`
	Code             string `query:"code" maxLength:"4096"`
	Error            string `query:"error" maxLength:"256"`
	ErrorDescription string `query:"error_description" maxLength:"2048"`
	TenantID         string `query:"tenant_id" maxLength:"64" doc:"When given, must be the tenant the sign-in was started for."`
	Cookie           string `cookie:"__Host-tenantry-sso"`
}

type ssoExchangeInput struct {
	Body struct {
		Code string `json:"code" minLength:"1" maxLength:"256" doc:"The one-time code a sign-in sent the browser back with."`
	}
}

type ssoLinkInput struct {
	TenantPath
	Body struct {
		Password  string `json:"password" doc:"Your password: linking an identity to your account is confirmed with it once."`
		ReturnURL string `json:"return_url,omitempty" maxLength:"2048"`
	}
}

type ssoLinkStarted struct {
	AuthorizationURL string `json:"authorization_url" doc:"Send the browser there to sign in at the provider."`
}

type ssoLinkResponse struct {
	SetCookie    string `header:"Set-Cookie"`
	CacheControl string `header:"Cache-Control"`
	Body         envelope[ssoLinkStarted]
}

type ssoDetectInput struct {
	Body struct {
		Email text `json:"email" maxLength:"255"`
	}
}

type ssoDetectedTenant struct {
	TenantID   string `json:"tenant_id" format:"uuid"`
	TenantName string `json:"tenant_name"`
	Provider   string `json:"provider" enum:"azure_ad,google,oidc"`
	LoginURL   string `json:"login_url"`
}

type ssoDetected struct {
	HasSSO  bool                `json:"has_sso"`
	Tenants []ssoDetectedTenant `json:"tenants"`
}

type ssoAvailability struct {
	Available        bool    `json:"available"`
	AuthMethod       string  `json:"auth_method" enum:"local,sso,both"`
	Provider         *string `json:"provider"`
	AutoProvisioning bool    `json:"auto_provisioning"`
	SSOLoginURL      *string `json:"sso_login_url"`
	Message          string  `json:"message"`
}

type ssoIdentityView struct {
	TenantID         string     `json:"tenant_id" format:"uuid"`
	TenantName       string     `json:"tenant_name"`
	Issuer           string     `json:"issuer"`
	Subject          string     `json:"subject"`
	AzureTenantID    string     `json:"azure_tenant_id" doc:"Entra only: the directory (tid)."`
	AzureObjectID    string     `json:"azure_object_id" doc:"Entra only: the object id (oid)."`
	Email            string     `json:"email"`
	DisplayName      string     `json:"display_name"`
	HasProviderToken bool       `json:"has_provider_tokens" doc:"Whether provider tokens are stored; they are never returned."`
	TokenExpiresAt   *time.Time `json:"token_expires_at"`
	LastLoginAt      time.Time  `json:"last_login_at"`
	CreatedAt        time.Time  `json:"created_at"`
}

type ssoIdentities struct {
	Identities []ssoIdentityView `json:"identities"`
	Total      int               `json:"total"`
}

// callbackResponses documents the two answers of a sign-in's callback.
func (s *Server) callbackResponses() map[string]*huma.Response {
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[envelope[SSOLoginView]](), true, "")
	return map[string]*huma.Response{
		"200": {Description: "Signed in (no return_url): the usual login answer, with auth_method sso.",
			Headers: map[string]*huma.Param{"Cache-Control": {Schema: &huma.Schema{Type: "string", Enum: []any{"no-store"}}, Description: "Always no-store."}},
			Content: map[string]*huma.MediaType{"application/json": {Schema: schema}}},
		"302": {Description: "Back to the return_url, with a one-time code (or error) query parameter.",
			Headers: map[string]*huma.Param{"Location": {Schema: &huma.Schema{Type: "string"}, Description: "The return_url with code or error."}}},
	}
}

func (s *Server) registerSSOAuth() {
	tags := []string{"Single sign-on"}

	login := func(ctx context.Context, in *ssoLoginInput) (*huma.StreamResponse, error) {
		started, err := s.svc.SSO.Start(ctx, sso.StartInput{TenantID: in.id(ctx), ReturnURL: in.ReturnURL, LoginHint: in.LoginHint,
			CallbackURL: s.publicBase(ctx) + callbackPath, BrowserSecret: validCookie(in.Cookie)})
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.AppendHeader("Set-Cookie", browserCookie(started.BrowserSecret).String())
			hctx.SetHeader("Cache-Control", noStore)
			hctx.SetHeader("Location", started.AuthURL)
			hctx.SetStatus(http.StatusFound)
		}}, nil
	}
	loginResponses := map[string]*huma.Response{
		"302": {Description: "To the provider's authorization page, with state, nonce and a PKCE S256 challenge.",
			Headers: map[string]*huma.Param{
				"Location":   {Schema: &huma.Schema{Type: "string"}, Description: "The provider's authorization URL."},
				"Set-Cookie": {Schema: &huma.Schema{Type: "string"}, Description: "The " + ssoCookie + " cookie binding the sign-in to this browser."},
			}},
	}
	for _, op := range []huma.Operation{
		{OperationID: "sso-login", Path: "/api/auth/sso/login/{tenant_id}"},
		{OperationID: "sso-login-azure", Path: "/api/auth/sso/azure/login/{tenant_id}", Deprecated: true},
	} {
		op.Method, op.Tags = http.MethodGet, tags
		op.Summary = "Start signing in through a tenant's identity provider"
		op.Description = "Redirects (302) to the provider. The sign-in must complete within 10 minutes, in this browser. " +
			"A return_url not allowed by the tenant is refused (400 REDIRECT_NOT_ALLOWED)."
		op.Responses = loginResponses
		op.Errors = []int{http.StatusBadRequest, http.StatusNotFound, http.StatusBadGateway}
		huma.Register(s.api, op, login)
	}

	callback := func(ctx context.Context, in *ssoCallbackInput) (*huma.StreamResponse, error) {
		c, err := s.svc.SSO.Callback(ctx, sso.CallbackInput{State: in.State, Code: in.Code, Error: in.Error, ErrorDescription: in.ErrorDescription,
			BrowserSecret: validCookie(in.Cookie), TenantID: in.TenantID})
		if err != nil {
			var r *sso.Refusal
			if errors.As(err, &r) {
				audit.SetOutcome(ctx, audit.OutcomeDenied)
				if r.ReturnURL != "" {
					return redirect(withQuery(r.ReturnURL, "error", r.Err.Code)), nil
				}
			}
			return nil, err
		}
		if c.Code != "" {
			return redirect(withQuery(c.ReturnURL, "code", c.Code)), nil
		}
		view, err := s.ssoLogin(ctx, c)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(envelope[SSOLoginView]{Success: true, Message: "SSO login successful", Data: view})
		if err != nil {
			return nil, err
		}
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Type", "application/json")
			hctx.SetHeader("Cache-Control", noStore)
			hctx.SetStatus(http.StatusOK)
			_, _ = hctx.BodyWriter().Write(body)
		}}, nil
	}
	for _, op := range []huma.Operation{
		{OperationID: "sso-callback", Path: callbackPath},
		{OperationID: "sso-callback-azure", Path: "/api/auth/sso/azure/callback", Deprecated: true},
	} {
		op.Method, op.Tags = http.MethodGet, tags
		op.Summary = "Complete a sign-in: where the provider sends the browser back"
		op.Description = "Takes the state once (it must come from this browser, within 10 minutes), exchanges the code and verifies the ID token " +
			"(signature, issuer — for Entra the directory —, audience, expiry, nonce). With a return_url the browser goes back there with a one-time " +
			"code to exchange at /api/auth/sso/exchange (or with error=<code>); without, the answer is the usual login answer."
		op.Responses = s.callbackResponses()
		op.Errors = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusBadGateway}
		op.Metadata = map[string]any{auditMetadataKey: true}
		huma.Register(s.api, op, callback)
	}

	huma.Register(s.api, huma.Operation{
		OperationID: "sso-exchange", Method: http.MethodPost, Path: "/api/auth/sso/exchange", Tags: tags,
		Summary:     "Exchange a sign-in's one-time code for a session",
		Description: "A code works once, within 60 seconds of the sign-in. The answer is the usual login answer with auth_method sso.",
		Errors:      []int{http.StatusBadRequest, http.StatusForbidden},
	}, func(ctx context.Context, in *ssoExchangeInput) (*credentialsResponse[SSOLoginView], error) {
		c, err := s.svc.SSO.Exchange(ctx, in.Body.Code)
		if err != nil {
			return nil, err
		}
		view, err := s.ssoLogin(ctx, c)
		if err != nil {
			return nil, err
		}
		return credentials("SSO login successful", view), nil
	})

	huma.Register(s.api, ownerOnly(huma.Operation{
		OperationID: "sso-link", Method: http.MethodPost, Path: "/api/auth/sso/link/{tenant_id}", Tags: tags,
		Summary: "Link your account to your identity at a tenant's provider",
		Description: "Confirms your password once, then starts a sign-in at the tenant's provider (send the browser to authorization_url): " +
			"the identity it proves is linked to your account. Needed when an account with your email exists but the provider does not vouch for it.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusLocked, http.StatusBadGateway},
	}), func(ctx context.Context, in *ssoLinkInput) (*ssoLinkResponse, error) {
		started, err := s.svc.SSO.StartLink(ctx, in.Body.Password, sso.StartInput{TenantID: in.id(ctx), ReturnURL: in.Body.ReturnURL,
			CallbackURL: s.publicBase(ctx) + callbackPath})
		if err != nil {
			return nil, err
		}
		return &ssoLinkResponse{SetCookie: browserCookie(started.BrowserSecret).String(), CacheControl: noStore,
			Body: envelope[ssoLinkStarted]{Success: true, Message: "Sign in at the provider to link your identity", Data: ssoLinkStarted{AuthorizationURL: started.AuthURL}}}, nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-sso-identities", Method: http.MethodGet, Path: "/api/auth/sso/identities", Tags: tags,
		Summary:     "Your identities at tenants' providers",
		Description: "One per tenant whose single sign-on you used: (issuer, subject), and for Entra the directory and object id. Provider tokens are never returned.",
	}), func(ctx context.Context, _ *struct{}) (*response[ssoIdentities], error) {
		l, err := s.svc.SSO.Identities(ctx)
		if err != nil {
			return nil, err
		}
		out := ssoIdentities{Identities: make([]ssoIdentityView, len(l)), Total: len(l)}
		for i, id := range l {
			v := ssoIdentityView{TenantID: id.TenantID, TenantName: id.TenantName, Issuer: id.Issuer, Subject: id.Subject,
				AzureTenantID: id.ProviderTenantID, AzureObjectID: id.ObjectID, Email: id.Email, DisplayName: id.DisplayName,
				HasProviderToken: id.HasTokens, LastLoginAt: id.LastLoginAt.UTC(), CreatedAt: id.CreatedAt.UTC()}
			if id.TokenExpiresAt != nil {
				t := id.TokenExpiresAt.UTC()
				v.TokenExpiresAt = &t
			}
			out.Identities[i] = v
		}
		return ok("SSO identities retrieved successfully", out), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "sso-detect", Method: http.MethodPost, Path: "/api/auth/sso/detect", Tags: tags,
		Summary:     "Find the tenants an email address signs in to through single sign-on",
		Description: "Tenants whose verified domain is the address's and whose single sign-on is on, with their login URLs.",
		Errors:      []int{http.StatusBadRequest},
	}, func(ctx context.Context, in *ssoDetectInput) (*response[ssoDetected], error) {
		l, err := s.svc.SSO.Detect(ctx, string(in.Body.Email))
		if err != nil {
			return nil, err
		}
		out := ssoDetected{HasSSO: len(l) > 0, Tenants: make([]ssoDetectedTenant, len(l))}
		for i, d := range l {
			out.Tenants[i] = ssoDetectedTenant{TenantID: d.TenantID, TenantName: d.TenantName, Provider: d.ProviderType,
				LoginURL: "/api/auth/sso/login/" + d.TenantID}
		}
		return ok("SSO detection completed", out), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "sso-check-availability", Method: http.MethodGet, Path: "/api/auth/sso/check-availability/{tenant_id}", Tags: tags,
		Summary:     "Whether a tenant offers single sign-on",
		Description: "Public, as in the original: whether the tenant's members can sign in through its provider, and where.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}, func(ctx context.Context, in *TenantPath) (*response[ssoAvailability], error) {
		a, err := s.svc.SSO.CheckAvailability(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		out := ssoAvailability{Available: a.Available, AuthMethod: a.AuthMethod, AutoProvisioning: a.AutoProvisioning, Message: a.Message}
		if a.Available {
			u := s.publicBase(ctx) + "/api/auth/sso/login/" + in.id(ctx)
			out.SSOLoginURL, out.Provider = &u, &a.ProviderType
		}
		return ok("SSO availability checked", out), nil
	})
}

type ssoRefreshInput struct {
	Body struct {
		TenantID resourceID `json:"tenant_id" doc:"The tenant whose provider's tokens to refresh."`
	}
}

type ssoRefreshed struct {
	ExpiresAt *time.Time `json:"expires_at" doc:"When the new provider access token expires; null when the provider did not say."`
}

type ssoUserInfoInput struct {
	TenantID resourceID `query:"tenant_id" required:"true" doc:"The tenant whose provider to ask."`
}

type ssoUserInfo struct {
	UserInfo map[string]any `json:"user_info" doc:"The provider's userinfo answer (Microsoft Graph's /me for Entra), as it sent it."`
}

type ssoLogoutInput struct {
	TenantPath
	Body *struct {
		PostLogoutRedirectURI string `json:"post_logout_redirect_uri,omitempty" maxLength:"2048" doc:"Where the provider sends the browser after signing out; one of the tenant's allowed_redirect_urls."`
	}
}

type ssoLoggedOut struct {
	LogoutURL *string `json:"logout_url" doc:"The provider's end-session URL, to send the browser to; null when the provider has none."`
}

func (s *Server) registerSSOTokens() {
	tags := []string{"Single sign-on"}

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "sso-refresh", Method: http.MethodPost, Path: "/api/auth/sso/refresh", Tags: tags,
		Summary:     "Refresh your stored provider tokens for a tenant",
		Description: "Uses the stored refresh token; the provider's tokens are stored encrypted and never returned.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusBadGateway},
	}), func(ctx context.Context, in *ssoRefreshInput) (*response[ssoRefreshed], error) {
		exp, err := s.svc.SSO.RefreshProviderTokens(ctx, in.Body.TenantID.String())
		if err != nil {
			return nil, err
		}
		return ok("Provider tokens refreshed", ssoRefreshed{ExpiresAt: exp}), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "sso-user-info", Method: http.MethodGet, Path: "/api/auth/sso/user-info", Tags: tags,
		Summary:     "What a tenant's provider says about you",
		Description: "The provider's userinfo (Microsoft Graph's /me for Entra), asked with your stored provider token, refreshed first when expired.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusBadGateway},
	}), func(ctx context.Context, in *ssoUserInfoInput) (*response[ssoUserInfo], error) {
		info, err := s.svc.SSO.UserInfo(ctx, in.TenantID.String())
		if err != nil {
			return nil, err
		}
		return ok("User info retrieved successfully", ssoUserInfo{UserInfo: info}), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "sso-logout", Method: http.MethodPost, Path: "/api/auth/sso/logout/{tenant_id}", Tags: tags,
		Summary:     "Sign out of tenantry and get the provider's sign-out URL",
		Description: "Revokes the session of the access token at once, forgets your provider tokens for the tenant and returns the provider's end-session URL.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *ssoLogoutInput) (*response[ssoLoggedOut], error) {
		redirect := ""
		if in.Body != nil {
			redirect = in.Body.PostLogoutRedirectURI
		}
		u, err := s.svc.SSO.Logout(ctx, in.id(ctx), redirect)
		if err != nil {
			return nil, err
		}
		return ok("Logout successful", ssoLoggedOut{LogoutURL: nullIfEmpty(u)}), nil
	})
}

// validCookie returns the sign-in cookie's value if it looks like one
// tenantry set, "" otherwise.
func validCookie(v string) string {
	if len(v) != 43 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return ""
	}
	return v
}

func browserCookie(secret string) *http.Cookie {
	return &http.Cookie{Name: ssoCookie, Value: secret, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: int(sso.StateTTL / time.Second)}
}

// withQuery adds a query parameter to a URL the tenant allowed.
func withQuery(raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func redirect(location string) *huma.StreamResponse {
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Cache-Control", noStore)
		hctx.SetHeader("Location", location)
		hctx.SetStatus(http.StatusFound)
	}}
}
