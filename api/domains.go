package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sso"
)

// DomainView is an email domain a tenant claims, with the proof it must
// publish.
type DomainView struct {
	Domain      string     `json:"domain" example:"example.com"`
	Verified    bool       `json:"verified"`
	VerifiedAt  *time.Time `json:"verified_at"`
	RecordName  string     `json:"txt_record_name" doc:"Where to publish the proof: a TXT record of this name." example:"_tenantry-challenge.example.com"`
	RecordValue string     `json:"txt_record_value" doc:"The TXT record's value."`
	CreatedAt   time.Time  `json:"created_at"`
}

func viewDomain(d *sso.Domain) DomainView {
	v := DomainView{Domain: d.Domain, Verified: d.VerifiedAt != nil, RecordName: d.RecordName(), RecordValue: d.RecordValue(), CreatedAt: d.CreatedAt.UTC()}
	if d.VerifiedAt != nil {
		t := d.VerifiedAt.UTC()
		v.VerifiedAt = &t
	}
	return v
}

type claimDomainInput struct {
	TenantPath
	Body struct {
		Domain text `json:"domain" maxLength:"253" doc:"An email domain, such as example.com." example:"example.com"`
	}
}

type domainPath struct {
	TenantPath
	Domain string `path:"domain" maxLength:"253" doc:"The domain."`
}

func (s *Server) registerDomains() {
	tags := []string{"Single sign-on"}
	base := "/api/tenants/{tenant_id}/domains"

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "list-tenant-domains", Method: http.MethodGet, Path: base, Tags: tags,
		Summary:     "The email domains the tenant claims (admins)",
		Description: "Each with the DNS TXT record that proves it and whether it is verified.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *TenantPath) (*response[[]DomainView], error) {
		l, err := s.svc.SSO.Domains(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		out := make([]DomainView, len(l))
		for i := range l {
			out[i] = viewDomain(&l[i])
		}
		return ok("Domains retrieved successfully", out), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "claim-tenant-domain", Method: http.MethodPost, Path: base, Tags: tags,
		Summary: "Claim an email domain (admins)",
		Description: "Returns the TXT record to publish as proof, then verify it. A domain is verified for one tenant at a time; " +
			"an existing account is linked by email only when its domain is verified by the tenant.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *claimDomainInput) (*response[DomainView], error) {
		d, isNew, err := s.svc.SSO.ClaimDomain(ctx, in.id(ctx), string(in.Body.Domain))
		if err != nil {
			return nil, err
		}
		if !isNew {
			return ok("Domain already claimed", viewDomain(d)), nil
		}
		return created("Domain claimed: publish the TXT record, then verify", viewDomain(d)), nil
	})

	huma.Register(s.api, requires(permission.SSOManage, huma.Operation{
		OperationID: "verify-tenant-domain", Method: http.MethodPost, Path: base + "/{domain}/verify", Tags: tags,
		Summary: "Verify a claimed domain by its DNS proof (admins)",
		Description: "Looks up the TXT record _tenantry-challenge.<domain>. Not found is a 400 naming the record to publish; " +
			"a domain another tenant verified and still proves is a conflict (409).",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *domainPath) (*response[DomainView], error) {
		d, err := s.svc.SSO.VerifyDomain(ctx, in.id(ctx), in.Domain)
		if err != nil {
			return nil, err
		}
		return ok("Domain verified successfully", viewDomain(d)), nil
	})
}
