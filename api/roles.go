package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/tenant"
)

type roleView struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Permissions []string   `json:"permissions" doc:"resource:action, or resource:action:own for the member's own resources only."`
	BuiltIn     bool       `json:"built_in" doc:"Built-in roles (admin, user, viewer) can be read, not changed."`
	Members     int        `json:"members" doc:"How many members have the role."`
	CreatedAt   *time.Time `json:"created_at" doc:"Null for built-in roles."`
	UpdatedAt   *time.Time `json:"updated_at" doc:"Null for built-in roles."`
}

func viewRole(r *tenant.RoleInfo) roleView {
	return roleView{Name: r.Name, Description: r.Description, Permissions: r.Permissions.Strings(), BuiltIn: r.BuiltIn,
		Members: r.Members, CreatedAt: optionalTime(r.CreatedAt), UpdatedAt: optionalTime(r.UpdatedAt)}
}

// RolePath names one role of a tenant.
type RolePath struct {
	TenantPath
	Name string `path:"name" maxLength:"63" doc:"Role name."`
}

type createRoleInput struct {
	TenantPath
	Body struct {
		Name        string   `json:"name" maxLength:"63" doc:"1 to 63 lower-case letters, digits, - and _, starting with a letter; not admin, user or viewer." example:"auditor"`
		Description *string  `json:"description,omitempty" maxLength:"500"`
		Permissions []string `json:"permissions" maxItems:"64" doc:"Each resource:action, or resource:action:own; only permissions you hold." example:"[\"documents:read\",\"documents:update:own\"]"`
	}
}

type updateRoleInput struct {
	RolePath
	Body struct {
		Description *string   `json:"description,omitempty" maxLength:"500"`
		Permissions *[]string `json:"permissions,omitempty" maxItems:"64" doc:"Replaces the role's permissions; only permissions you hold."`
	}
}

type deleteRoleInput struct {
	RolePath
	ReassignTo string `query:"reassign_to" maxLength:"63" doc:"The role members who have this one get instead; required when some do."`
}

type effectivePermissions struct {
	Role        string     `json:"role"`
	ExpiresAt   *time.Time `json:"expires_at" doc:"When your role ends; null for never."`
	Permissions []string   `json:"permissions" doc:"What your role grants, as resource:action or resource:action:own."`
}

type permissionDefinition struct {
	Permission  string `json:"permission"`
	Description string `json:"description"`
	Ownable     bool   `json:"ownable" doc:"May be granted as permission:own, for the member's own resources only."`
}

func (s *Server) registerRoles() {
	tags := []string{"Roles and permissions"}
	base := "/api/tenants/{tenant_id}/roles"

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-permissions", Method: http.MethodGet, Path: "/api/permissions", Tags: tags,
		Summary:     "The catalogue of permissions",
		Description: "Every permission a role can grant, for building role editors.",
	}), func(_ context.Context, _ *struct{}) (*response[[]permissionDefinition], error) {
		out := make([]permissionDefinition, len(permission.Catalogue))
		for i, d := range permission.Catalogue {
			out[i] = permissionDefinition{Permission: string(d.Permission), Description: d.Description, Ownable: d.Ownable}
		}
		return ok("Permissions retrieved successfully", out), nil
	})

	huma.Register(s.api, requires(permission.TenantRead, huma.Operation{
		OperationID: "get-my-permissions", Method: http.MethodGet, Path: "/api/tenants/{tenant_id}/permissions", Tags: tags,
		Summary:     "Your effective permissions in a tenant",
		Description: "Your role in the tenant and what it grants, for user interfaces to show only what you may do.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *TenantPath) (*response[effectivePermissions], error) {
		mt, err := s.svc.Tenants.Authorize(ctx, in.id(ctx), permission.TenantRead)
		if err != nil {
			return nil, err
		}
		return ok("Permissions retrieved successfully", effectivePermissions{Role: string(mt.Role),
			ExpiresAt: optionalTime(mt.ExpiresAt), Permissions: mt.Permissions.Strings()}), nil
	})

	huma.Register(s.api, requires(permission.RolesRead, huma.Operation{
		OperationID: "list-roles", Method: http.MethodGet, Path: base, Tags: tags,
		Summary:     "The tenant's roles",
		Description: "The built-in roles, then the tenant's own, each with its permissions and how many members have it.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *TenantPath) (*response[[]roleView], error) {
		list, err := s.svc.Tenants.Roles(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		out := make([]roleView, len(list))
		for i := range list {
			out[i] = viewRole(&list[i])
		}
		return ok("Roles retrieved successfully", out), nil
	})

	huma.Register(s.api, requires(permission.RolesManage, huma.Operation{
		OperationID: "create-role", Method: http.MethodPost, Path: base, Tags: tags,
		Summary:       "Create a custom role",
		Description:   "A role granting permissions you hold yourself (403 otherwise). A name already used is a conflict (409).",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *createRoleInput) (*response[roleView], error) {
		perms := in.Body.Permissions
		r, err := s.svc.Tenants.CreateRole(ctx, in.id(ctx), tenant.RoleChange{Name: in.Body.Name, Description: in.Body.Description, Permissions: &perms})
		if err != nil {
			return nil, err
		}
		return created("Role created successfully", viewRole(r)), nil
	})

	huma.Register(s.api, requires(permission.RolesRead, huma.Operation{
		OperationID: "get-role", Method: http.MethodGet, Path: base + "/{name}", Tags: tags,
		Summary:     "One of the tenant's roles",
		Description: "A built-in or custom role with its permissions and how many members have it.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *RolePath) (*response[roleView], error) {
		r, err := s.svc.Tenants.Role(ctx, in.id(ctx), in.Name)
		if err != nil {
			return nil, err
		}
		return ok("Role retrieved successfully", viewRole(r)), nil
	})

	huma.Register(s.api, requires(permission.RolesManage, huma.Operation{
		OperationID: "update-role", Method: http.MethodPut, Path: base + "/{name}", Tags: tags,
		Summary: "Change a custom role",
		Description: "Built-in roles cannot be changed (403). You must hold what the role grants before and after; a change " +
			"that would leave no member able to manage members and roles is a conflict (409).",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *updateRoleInput) (*response[roleView], error) {
		r, err := s.svc.Tenants.UpdateRole(ctx, in.id(ctx), in.Name, tenant.RoleChange{Description: in.Body.Description, Permissions: in.Body.Permissions})
		if err != nil {
			return nil, err
		}
		return ok("Role updated successfully", viewRole(r)), nil
	})

	huma.Register(s.api, requires(permission.RolesManage, huma.Operation{
		OperationID: "delete-role", Method: http.MethodDelete, Path: base + "/{name}", Tags: tags,
		Summary: "Delete a custom role",
		Description: "A role some members have is deleted only with reassign_to, the role they get instead (409 without). " +
			"Built-in roles cannot be deleted (403).",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	}), func(ctx context.Context, in *deleteRoleInput) (*response[*noData], error) {
		if err := s.svc.Tenants.DeleteRole(ctx, in.id(ctx), in.Name, in.ReassignTo); err != nil {
			return nil, err
		}
		return done("Role deleted successfully"), nil
	})
}
