package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/tenant"
)

// TenantView is a tenant as the API shows it, with the caller's role when
// listed for a member.
type TenantView struct {
	ID           string     `json:"id" format:"uuid"`
	Name         string     `json:"name"`
	DatabaseName string     `json:"database_name"`
	IsActive     bool       `json:"is_active"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	CreatedBy    *string    `json:"created_by" format:"uuid" doc:"Creator's user id, when known."`
	Role         string     `json:"role,omitempty" doc:"Your role in the tenant: admin, user, viewer or one of the tenant's own roles."`
	JoinedAt     *time.Time `json:"joined_at,omitempty" doc:"When you joined the tenant."`
}

type memberView struct {
	UserView
	Role      string     `json:"role" doc:"admin, user, viewer or one of the tenant's own roles."`
	JoinedAt  time.Time  `json:"joined_at"`
	ExpiresAt *time.Time `json:"expires_at" doc:"When the role, and the membership with it, ends; null for never."`
}

type tenantDetail struct {
	TenantView
	Members []memberView `json:"members"`
}

type membershipView struct {
	UserID    string     `json:"user_id" format:"uuid"`
	TenantID  string     `json:"tenant_id" format:"uuid"`
	Role      string     `json:"role" doc:"admin, user, viewer or one of the tenant's own roles."`
	JoinedAt  time.Time  `json:"joined_at"`
	ExpiresAt *time.Time `json:"expires_at" doc:"When the role, and the membership with it, ends; null for never."`
}

// optionalTime is t in UTC, or nil for the zero time.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func viewTenant(t *tenantry.Tenant) TenantView {
	v := TenantView{
		ID: t.ID, Name: t.Name, DatabaseName: t.DatabaseName, IsActive: t.IsActive,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC(),
	}
	if t.CreatedBy != "" {
		v.CreatedBy = &t.CreatedBy
	}
	return v
}

func viewMemberTenant(mt *tenant.MemberTenant) TenantView {
	v := viewTenant(&mt.Tenant)
	joined := mt.JoinedAt.UTC()
	v.Role, v.JoinedAt = string(mt.Role), &joined
	return v
}

func viewMemberTenants(list []tenant.MemberTenant) []TenantView {
	out := make([]TenantView, len(list))
	for i := range list {
		out[i] = viewMemberTenant(&list[i])
	}
	return out
}

func viewMembership(m *tenantry.Membership) membershipView {
	return membershipView{UserID: m.UserID, TenantID: m.TenantID, Role: string(m.Role), JoinedAt: m.JoinedAt.UTC(), ExpiresAt: optionalTime(m.ExpiresAt)}
}

type createTenantInput struct {
	Body struct {
		Name text `json:"name" doc:"1 to 255 characters; trimmed; no control characters. Names need not be unique." example:"Acme Corporation"`
	}
}

type updateTenantInput struct {
	TenantPath
	Body struct {
		Name     *text `json:"name,omitempty" doc:"1 to 255 characters; trimmed; no control characters."`
		IsActive *bool `json:"is_active,omitempty" doc:"false deactivates the tenant: it answers 404 like a deleted one, but is kept with no retention period."`
	}
}

// assignmentBody is a role given to a member.
type assignmentBody struct {
	Role      string     `json:"role" maxLength:"63" doc:"admin, user, viewer or one of the tenant's own roles; it may grant only permissions you hold."`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"When the role, and the membership with it, ends (RFC 3339, in the future); omit for never."`
}

func (b *assignmentBody) assignment() tenant.Assignment {
	a := tenant.Assignment{Role: tenantry.Role(b.Role)}
	if b.ExpiresAt != nil {
		a.ExpiresAt = *b.ExpiresAt
	}
	return a
}

type addMemberInput struct {
	TenantPath
	Body struct {
		UserID    *resourceID `json:"user_id,omitempty" doc:"Id of an existing, active user; or give email."`
		Email     *text       `json:"email,omitempty" doc:"Address of an existing, active user; or give user_id. To add someone without an account, invite them."`
		Role      string      `json:"role" maxLength:"63" doc:"admin, user, viewer or one of the tenant's own roles; it may grant only permissions you hold."`
		ExpiresAt *time.Time  `json:"expires_at,omitempty" doc:"When the role, and the membership with it, ends (RFC 3339, in the future); omit for never."`
	}
}

type changeRoleInput struct {
	MemberPath
	Body assignmentBody
}

func (s *Server) registerTenants() {
	tags := []string{"Tenants"}
	notFound := []int{http.StatusBadRequest, http.StatusNotFound}

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-tenants", Method: http.MethodGet, Path: "/api/tenants", Tags: tags,
		Summary:     "Your active tenants, with your role in each",
		Description: "The active tenants you are a member of, each with your role and when you joined.",
	}), func(ctx context.Context, _ *struct{}) (*response[[]TenantView], error) {
		list, err := s.svc.Tenants.ListMine(ctx)
		if err != nil {
			return nil, err
		}
		return ok("Tenants retrieved successfully", viewMemberTenants(list)), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "create-tenant", Method: http.MethodPost, Path: "/api/tenants", Tags: tags,
		Summary:       "Create a tenant",
		Description:   "Provisions the tenant's own database and makes you its admin.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *createTenantInput) (*response[TenantView], error) {
		mt, err := s.svc.Tenants.Create(ctx, string(in.Body.Name))
		if err != nil {
			return nil, err
		}
		if info := infoFrom(ctx); info != nil {
			info.tenantID = mt.ID
		}
		return created("Tenant created successfully", viewMemberTenant(mt)), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "tenants-health", Method: http.MethodGet, Path: "/api/tenants/health", Tags: tags,
		Summary:     "Tenants API health",
		Description: "Answers 200 while the tenants API serves requests. Checks no dependency.",
	}, func(ctx context.Context, _ *struct{}) (*response[serviceHealth], error) {
		return ok("Tenants API is healthy", serviceHealth{Status: "healthy", Service: "tenants"}), nil
	})

	huma.Register(s.api, requires(permission.TenantRead, huma.Operation{
		OperationID: "get-tenant", Method: http.MethodGet, Path: "/api/tenants/{tenant_id}", Tags: tags,
		Summary:     "A tenant you belong to, with its members",
		Description: "The tenant, your role in it and its members with theirs. A tenant you are not a member of answers 404.",
		Errors:      notFound,
	}), func(ctx context.Context, in *TenantPath) (*response[tenantDetail], error) {
		d, err := s.svc.Tenants.Get(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		members := make([]memberView, len(d.Members))
		for i, m := range d.Members {
			members[i] = memberView{UserView: viewUser(&m.User), Role: string(m.Role), JoinedAt: m.JoinedAt.UTC(), ExpiresAt: optionalTime(m.ExpiresAt)}
		}
		return ok("Tenant details retrieved successfully", tenantDetail{TenantView: viewMemberTenant(&d.MemberTenant), Members: members}), nil
	})

	huma.Register(s.api, requires(permission.TenantUpdate, huma.Operation{
		OperationID: "update-tenant", Method: http.MethodPut, Path: "/api/tenants/{tenant_id}", Tags: tags,
		Summary:     "Rename or deactivate a tenant (admins)",
		Description: "Fields left out are unchanged. is_active false deactivates the tenant: afterwards it answers 404, like a deleted tenant, but its data is kept with no retention period and it is never purged.",
		Errors:      notFound,
	}), func(ctx context.Context, in *updateTenantInput) (*response[TenantView], error) {
		t, err := s.svc.Tenants.Update(ctx, in.id(ctx), tenant.Update{Name: (*string)(in.Body.Name), IsActive: in.Body.IsActive})
		if err != nil {
			return nil, err
		}
		return ok("Tenant updated successfully", viewTenant(t)), nil
	})

	huma.Register(s.api, requires(permission.TenantDelete, huma.Operation{
		OperationID: "delete-tenant", Method: http.MethodDelete, Path: "/api/tenants/{tenant_id}", Tags: tags,
		Summary:     "Delete a tenant (admins)",
		Description: "Afterwards the tenant answers 404 to everyone. Its data (members, documents, files, audit trail) is kept for the retention period (TENANTRY_TENANT_RETENTION, 30 days by default), during which an operator can restore it (tenantry tenants restore), then purged for good.",
		Errors:      notFound,
	}), func(ctx context.Context, in *TenantPath) (*response[*noData], error) {
		if err := s.svc.Tenants.Delete(ctx, in.id(ctx)); err != nil {
			return nil, err
		}
		return done("Tenant deleted successfully"), nil
	})

	huma.Register(s.api, quotaLimited(requires(permission.MembersAdd, huma.Operation{
		OperationID: "add-tenant-member", Method: http.MethodPost, Path: "/api/tenants/{tenant_id}/users", Tags: tags,
		Summary: "Add a user to a tenant (admins)",
		Description: "Adds an existing, active user, named by user_id or email, with a role: admin, user, viewer or one of the tenant's own. A user already in the tenant is a conflict (409). " +
			"A tenant at its members quota refuses a new member (403 QUOTA_EXCEEDED).",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	})), func(ctx context.Context, in *addMemberInput) (*response[membershipView], error) {
		var userID, email string
		if in.Body.UserID != nil {
			userID = in.Body.UserID.String()
		}
		if in.Body.Email != nil {
			email = string(*in.Body.Email)
		}
		if userID == "" && email == "" {
			return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
				Details: map[string][]string{"user_id": {"Give user_id or email."}}}
		}
		m, err := s.svc.Tenants.AddMemberBy(ctx, in.id(ctx), userID, email, (&assignmentBody{Role: in.Body.Role, ExpiresAt: in.Body.ExpiresAt}).assignment())
		if err != nil {
			return nil, err
		}
		return created("User added to tenant successfully", viewMembership(m)), nil
	})

	huma.Register(s.api, requires(permission.MembersUpdate, huma.Operation{
		OperationID: "change-tenant-member-role", Method: http.MethodPut, Path: "/api/tenants/{tenant_id}/users/{user_id}", Tags: tags,
		Summary:     "Change a member's role (admins)",
		Description: "The last admin of a tenant cannot be demoted (409).",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *changeRoleInput) (*response[membershipView], error) {
		m, err := s.svc.Tenants.ChangeRole(ctx, in.id(ctx), in.UserID.String(), in.Body.assignment())
		if err != nil {
			return nil, err
		}
		return ok("Member role updated successfully", viewMembership(m)), nil
	})

	huma.Register(s.api, requires(permission.MembersRemove, huma.Operation{
		OperationID: "remove-tenant-member", Method: http.MethodDelete, Path: "/api/tenants/{tenant_id}/users/{user_id}", Tags: tags,
		Summary:     "Remove a member (admins)",
		Description: "The last admin of a tenant cannot be removed (409).",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *MemberPath) (*response[*noData], error) {
		if err := s.svc.Tenants.RemoveMember(ctx, in.id(ctx), in.UserID.String()); err != nil {
			return nil, err
		}
		return done("User removed from tenant successfully"), nil
	})
}
