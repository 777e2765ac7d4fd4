package sso

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
)

// ChallengePrefix is the label under which a domain's proof is published:
// a TXT record at _tenantry-challenge.<domain>.
const ChallengePrefix = "_tenantry-challenge."

// tokenPrefix starts the value of a proof's TXT record.
const tokenPrefix = "tenantry-verification="

// newResolver returns the resolver domain proofs are looked up with: the
// system's, or one asking only server ("host:port").
func newResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		},
	}
}

// Domain is an email domain a tenant claims.
type Domain struct {
	TenantID   string
	Domain     string
	Token      string
	VerifiedAt *time.Time
	CreatedAt  time.Time
}

// RecordName is where the proof is published.
func (d *Domain) RecordName() string { return ChallengePrefix + d.Domain }

// RecordValue is what the TXT record must hold.
func (d *Domain) RecordValue() string { return tokenPrefix + d.Token }

func scanDomains(rows sqldb.Rows, err error) ([]Domain, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Domain{}
	for rows.Next() {
		var d Domain
		if err := rows.Scan(&d.TenantID, &d.Domain, &d.Token, &d.VerifiedAt, &d.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

const domainColumns = `tenant_id, domain, token, verified_at, created_at`

// Domains lists a tenant's claimed domains. Admins only.
func (s *Service) Domains(ctx context.Context, tenantID string) ([]Domain, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	return scanDomains(s.db.Query(ctx, `SELECT `+domainColumns+` FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain`, tenantID))
}

func findDomain(ctx context.Context, q sqldb.Querier, tenantID, domain string) (*Domain, error) {
	l, err := scanDomains(q.Query(ctx, `SELECT `+domainColumns+` FROM tenant_domains WHERE tenant_id = $1 AND domain = $2`, tenantID, domain))
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, tenantry.Errorf(tenantry.ENotFound, "Domain not claimed by this tenant")
	}
	return &l[0], nil
}

// ClaimDomain claims a domain for a tenant and returns the token its proof
// must publish. Claiming a domain already claimed returns the claim as it
// is. Admins only.
func (s *Service) ClaimDomain(ctx context.Context, tenantID, domain string) (*Domain, bool, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, false, err
	}
	domain = NormalizeDomain(strings.TrimPrefix(strings.TrimSpace(domain), "@"))
	if !ValidDomain(domain) {
		return nil, false, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"domain": {"Must be a domain name, such as example.com."}}}
	}
	if d, err := findDomain(ctx, s.db, tenantID, domain); err == nil {
		return d, false, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return nil, false, err
	}
	d := &Domain{TenantID: tenantID, Domain: domain, Token: base64.RawURLEncoding.EncodeToString(b), CreatedAt: sqldb.Now()}
	_, err := s.db.Exec(ctx, `INSERT INTO tenant_domains (tenant_id, domain, token, created_at) VALUES ($1, $2, $3, $4)`,
		d.TenantID, d.Domain, d.Token, d.CreatedAt)
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		d, err := findDomain(ctx, s.db, tenantID, domain)
		return d, false, err
	} else if err != nil {
		return nil, false, err
	}
	audit.SetTarget(ctx, "domain", domain)
	return d, true, nil
}

// proven reports whether the domain's TXT record holds the token.
func (s *Service) proven(ctx context.Context, domain, token string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	records, err := s.resolver.LookupTXT(ctx, ChallengePrefix+domain)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false, nil
	} else if err != nil {
		return false, tenantry.Errorf(tenantry.EUnavailable, "The DNS lookup of %s failed; try again later", ChallengePrefix+domain)
	}
	want := tokenPrefix + token
	for _, r := range records {
		if strings.TrimSpace(r) == want {
			return true, nil
		}
	}
	return false, nil
}

// VerifyDomain checks a claimed domain's proof and marks it verified. A
// domain is verified for one tenant at a time: another tenant's claim
// whose proof no longer holds is withdrawn, one whose proof still holds
// makes this a conflict. Admins only.
func (s *Service) VerifyDomain(ctx context.Context, tenantID, domain string) (*Domain, error) {
	if _, err := s.tenants.Authorize(ctx, tenantID, permission.SSOManage); err != nil {
		return nil, err
	}
	domain = NormalizeDomain(domain)
	d, err := findDomain(ctx, s.db, tenantID, domain)
	if err != nil {
		return nil, err
	}
	audit.SetTarget(ctx, "domain", domain)
	ok, err := s.proven(ctx, domain, d.Token)
	if err != nil {
		return nil, err
	}
	if !ok {
		audit.Annotate(ctx, "reason", "proof_not_found")
		return nil, &tenantry.Error{Code: tenantry.EBadRequest,
			Message: "The proof was not found: publish a TXT record " + d.RecordName() + " with the value " + d.RecordValue(),
			Details: map[string]any{"record_name": d.RecordName(), "record_value": d.RecordValue()}}
	}
	// Another tenant holding the domain keeps it only while its own proof
	// is still published.
	var holder, holderToken string
	err = s.db.QueryRow(ctx, `SELECT tenant_id, token FROM tenant_domains WHERE domain = $1 AND verified_at IS NOT NULL AND tenant_id <> $2`,
		domain, tenantID).Scan(&holder, &holderToken)
	if err == nil {
		held, err := s.proven(ctx, domain, holderToken)
		if err != nil {
			return nil, err
		}
		if held {
			return nil, tenantry.Errorf(tenantry.EConflict, "The domain is verified by another tenant")
		}
	} else if !errors.Is(err, sqldb.ErrNoRows) {
		return nil, err
	}
	now := sqldb.Now()
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if holder != "" {
			if _, err := tx.Exec(ctx, `UPDATE tenant_domains SET verified_at = NULL WHERE tenant_id = $1 AND domain = $2`, holder, domain); err != nil {
				return err
			}
			audit.Annotate(ctx, "withdrawn_from_tenant", holder)
		}
		_, err := tx.Exec(ctx, `UPDATE tenant_domains SET verified_at = $3 WHERE tenant_id = $1 AND domain = $2`, tenantID, domain, now)
		if errors.Is(err, sqldb.ErrUniqueViolation) {
			return tenantry.Errorf(tenantry.EConflict, "The domain is verified by another tenant")
		} else if err != nil {
			return err
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventDomainVerified, tenantID, principalID(ctx), map[string]any{
			"tenant_id": tenantID, "domain": domain, "withdrawn_from": holder,
		})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	d.VerifiedAt = &now
	return d, nil
}

// domainVerifiedBy reports whether the tenant holds the domain verified.
func domainVerifiedBy(ctx context.Context, q sqldb.Querier, tenantID, domain string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM tenant_domains WHERE tenant_id = $1 AND domain = $2 AND verified_at IS NOT NULL`,
		tenantID, domain).Scan(&n)
	return n > 0, err
}

// Detected is a tenant an address may sign in to through single sign-on.
type Detected struct {
	TenantID     string
	TenantName   string
	ProviderType string
}

// Detect returns the tenants whose verified domain is the address's and
// whose single sign-on is on.
func (s *Service) Detect(ctx context.Context, email string) ([]Detected, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed", Details: map[string][]string{"email": {"Email is required"}}}
	}
	domain := EmailDomain(email)
	if !strings.Contains(email, "@") || !ValidDomain(domain) {
		return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed", Details: map[string][]string{"email": {"Invalid email format"}}}
	}
	rows, err := s.db.Query(ctx, `
		SELECT t.id, t.name, c.provider_type
		FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id JOIN sso_configs c ON c.tenant_id = t.id
		WHERE d.domain = $1 AND d.verified_at IS NOT NULL AND c.is_enabled AND t.auth_method IN ('sso', 'both')
		  AND t.is_active AND t.provisioned_at IS NOT NULL
		ORDER BY t.name, t.id`, domain)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Detected{}
	for rows.Next() {
		var d Detected
		if err := rows.Scan(&d.TenantID, &d.TenantName, &d.ProviderType); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Availability says whether a tenant's members can sign in through single
// sign-on.
type Availability struct {
	Available        bool
	AuthMethod       string
	ProviderType     string
	AutoProvisioning bool
	Message          string
}

// CheckAvailability tells whether a tenant offers single sign-on.
func (s *Service) CheckAvailability(ctx context.Context, tenantID string) (*Availability, error) {
	_, method, err := activeTenant(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	a := &Availability{AuthMethod: method}
	if method == tenantry.AuthLocal {
		a.Message = "SSO not enabled for this tenant"
		return a, nil
	}
	c, err := findConfig(ctx, s.db, tenantID)
	if errors.Is(err, errNoConfig) || (err == nil && !c.IsEnabled) {
		a.Message = "SSO configuration not found or disabled"
		return a, nil
	} else if err != nil {
		return nil, err
	}
	a.Available, a.ProviderType, a.AutoProvisioning = true, c.ProviderType, c.AutoProvisioning.Enabled
	a.Message = "SSO is available"
	return a, nil
}
