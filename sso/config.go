// Package sso is single sign-on per tenant: each tenant may sign its
// members in through its own OpenID Connect provider — Microsoft Entra ID,
// Google Workspace or any other — configured by the tenant's admins.
//
// The package keeps what the original platform got wrong out of reach: the
// client secret is sealed by the keyring and never returned; a sign-in
// carries a single-use state bound to the browser that started it, a nonce
// and PKCE; the ID token is verified in full (signature against the
// provider's keys, issuer — for Entra also the directory —, audience,
// expiry, nonce); the browser goes back only to URLs the tenant allowed,
// with a one-time code, never tokens; and an existing account is linked
// only on proof.
package sso

import (
	"encoding/json"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/permission"
)

// Provider types.
const (
	// AzureAD is Microsoft Entra ID (formerly Azure AD).
	AzureAD = "azure_ad"
	// Google is Google Workspace.
	Google = "google"
	// OIDC is any OpenID Connect provider, named by its issuer.
	OIDC = "oidc"
)

// DefaultAzureAuthority is Entra's public cloud; sovereign clouds have
// others (TENANTRY_SSO_AZURE_AUTHORITY).
const DefaultAzureAuthority = "https://login.microsoftonline.com"

// DefaultGoogleIssuer is Google's issuer.
const DefaultGoogleIssuer = "https://accounts.google.com"

// DefaultGraphURL is Microsoft Graph, which resolves Entra's group overage
// and answers user-info.
const DefaultGraphURL = "https://graph.microsoft.com"

// Config is a tenant's single sign-on configuration as the service works
// with it. The client secret is not part of it: it stays sealed until a
// sign-in needs it.
type Config struct {
	ID           string
	TenantID     string
	ProviderType string
	// ProviderTenantID is Entra's directory: its GUID or one of its
	// verified domains (contoso.onmicrosoft.com).
	ProviderTenantID string
	// Issuer is an OIDC provider's issuer URL.
	Issuer string
	// HostedDomain restricts Google sign-ins to one Workspace domain.
	HostedDomain        string
	ClientID            string
	HasClientSecret     bool
	AllowedRedirectURLs []string
	// Scopes requested from the provider; the type's defaults when empty.
	Scopes           []string
	AutoProvisioning AutoProvisioning
	IsEnabled        bool
	// AuthMethod is the tenant's: local, sso or both.
	AuthMethod string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	CreatedBy  string
}

// AutoProvisioning says who may enter through single sign-on and with what
// role. Roles are applied at every sign-in.
type AutoProvisioning struct {
	// Enabled creates accounts and memberships for people the provider
	// vouches for; off, only existing members may sign in.
	Enabled bool `json:"enabled"`
	// DefaultRole is the role of a member no group maps.
	DefaultRole tenantry.Role `json:"default_role"`
	// SyncAttributesOnLogin updates names from the provider's claims.
	SyncAttributesOnLogin bool `json:"sync_attributes_on_login"`
	// AllowedEmailDomains, when not empty, are the only domains whose
	// addresses may sign in (exact domains, no suffix matching).
	AllowedEmailDomains []string `json:"allowed_email_domains"`
	// AllowedAzureGroups, when not empty, are the groups (ids or names)
	// one of which a person must be in.
	AllowedAzureGroups []string `json:"allowed_azure_groups"`
	// GroupRoleMapping maps a group (id or name) to a role; the highest
	// role of the person's groups wins.
	GroupRoleMapping map[string]tenantry.Role `json:"group_role_mapping"`
}

// DefaultAutoProvisioning is the original's default: off, viewers, names
// synced.
func DefaultAutoProvisioning() AutoProvisioning {
	return AutoProvisioning{DefaultRole: tenantry.RoleViewer, SyncAttributesOnLogin: true,
		AllowedEmailDomains: []string{}, AllowedAzureGroups: []string{}, GroupRoleMapping: map[string]tenantry.Role{}}
}

func (a AutoProvisioning) normalized() AutoProvisioning {
	if a.DefaultRole == "" {
		a.DefaultRole = tenantry.RoleViewer
	}
	if a.AllowedEmailDomains == nil {
		a.AllowedEmailDomains = []string{}
	}
	if a.AllowedAzureGroups == nil {
		a.AllowedAzureGroups = []string{}
	}
	if a.GroupRoleMapping == nil {
		a.GroupRoleMapping = map[string]tenantry.Role{}
	}
	return a
}

func (a AutoProvisioning) encode() string {
	b, _ := json.Marshal(a.normalized())
	return string(b)
}

func decodeAutoProvisioning(s string) AutoProvisioning {
	a := DefaultAutoProvisioning()
	_ = json.Unmarshal([]byte(s), &a)
	return a.normalized()
}

// validate checks and normalises auto-provisioning settings in place.
func (a *AutoProvisioning) validate(errs tenantry.FieldErrors, field string) {
	*a = a.normalized()
	if !permission.IsBuiltIn(string(a.DefaultRole)) {
		errs.Add(field+".default_role", "Must be one of: admin, user, viewer.")
	}
	domains := make([]string, 0, len(a.AllowedEmailDomains))
	for _, d := range a.AllowedEmailDomains {
		d = NormalizeDomain(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if !ValidDomain(d) {
			errs.Add(field+".allowed_email_domains", "Each entry must be a domain name, such as example.com.")
			continue
		}
		if !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	a.AllowedEmailDomains = domains
	for _, g := range a.AllowedAzureGroups {
		if strings.TrimSpace(g) == "" || len(g) > 255 {
			errs.Add(field+".allowed_azure_groups", "Each entry must be a group id or name of 1 to 255 characters.")
		}
	}
	for g, r := range a.GroupRoleMapping {
		if strings.TrimSpace(g) == "" || len(g) > 255 {
			errs.Add(field+".group_role_mapping", "Each key must be a group id or name of 1 to 255 characters.")
		}
		if !permission.IsBuiltIn(string(r)) {
			errs.Add(field+".group_role_mapping", "Each role must be one of: admin, user, viewer.")
		}
	}
	if len(a.AllowedEmailDomains) > 100 || len(a.AllowedAzureGroups) > 500 || len(a.GroupRoleMapping) > 500 {
		errs.Add(field, "Too many entries.")
	}
}

// domainAllowed reports whether an address's domain is one of the allowed
// ones: exact matches only, so that example.com does not admit
// evilexample.com nor sub.example.com.
func (a AutoProvisioning) domainAllowed(email string) bool {
	if len(a.AllowedEmailDomains) == 0 {
		return true
	}
	return slices.Contains(a.AllowedEmailDomains, EmailDomain(email))
}

// groupAllowed reports whether one of the person's groups is allowed.
func (a AutoProvisioning) groupAllowed(groups []string) bool {
	if len(a.AllowedAzureGroups) == 0 {
		return true
	}
	for _, g := range groups {
		if slices.Contains(a.AllowedAzureGroups, g) {
			return true
		}
	}
	return false
}

// roleFor returns the highest role the person's groups map to, or the
// default role.
func (a AutoProvisioning) roleFor(groups []string) (tenantry.Role, bool) {
	var best tenantry.Role
	for _, g := range groups {
		if r, ok := a.GroupRoleMapping[g]; ok && permission.IsBuiltIn(string(r)) && (best == "" || permission.BuiltInRank(string(r)) >= permission.BuiltInRank(string(best))) {
			best = r
		}
	}
	if best == "" {
		return a.DefaultRole, false
	}
	return best, true
}

// EmailDomain returns the lower-cased domain of an address, "" when it has
// none.
func EmailDomain(email string) string {
	i := strings.LastIndexByte(email, '@')
	if i < 0 {
		return ""
	}
	return NormalizeDomain(email[i+1:])
}

// NormalizeDomain lower-cases a domain and drops a trailing dot.
func NormalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

var domainLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidDomain reports whether d is a lower-case domain name of at least two
// labels.
func ValidDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !domainLabel.MatchString(l) {
			return false
		}
	}
	// The last label is a top-level domain, never all digits.
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// isGUID reports whether s is an Entra directory id.
func isGUID(s string) bool { return guidPattern.MatchString(s) }

// CheckIssuerURL refuses an issuer, authority or endpoint URL that is not
// https, except on a loopback address (tests and local providers). It
// returns a message for the client, or "".
func CheckIssuerURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "Must be an absolute URL without credentials, query or fragment."
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		if isLoopback(u.Hostname()) {
			return ""
		}
		return "Must use https (plain http only on a loopback address)."
	}
	return "Must use https."
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkRedirectURL refuses an allowed redirect URL that could not be
// matched safely: it must be absolute, https (http on loopback), without
// credentials or fragment.
func checkRedirectURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "Each entry must be an absolute URL without credentials or fragment."
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return "Each entry must use https (plain http only on a loopback address)."
	}
	return ""
}

// RedirectAllowed reports whether target is allowed by one of allowed: same
// scheme and host (port included), no credentials, and a path that starts
// with the allowed one at a segment boundary. A plain string prefix would
// let https://app.example.com admit https://app.example.com.evil.net.
func RedirectAllowed(target string, allowed []string) bool {
	t, err := url.Parse(target)
	if err != nil || t.User != nil || t.Host == "" || t.Opaque != "" || strings.ContainsAny(target, "\\\r\n\t") ||
		strings.Contains(t.Path, "/..") {
		return false
	}
	for _, a := range allowed {
		u, err := url.Parse(a)
		if err != nil || u.Scheme != t.Scheme || !strings.EqualFold(u.Host, t.Host) {
			continue
		}
		base := u.EscapedPath()
		path := t.EscapedPath()
		if base == "" || base == "/" {
			return true
		}
		if path == base || strings.HasPrefix(path, strings.TrimSuffix(base, "/")+"/") {
			return true
		}
	}
	return false
}
