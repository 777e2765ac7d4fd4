package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/tenant"
)

// AdminTenantView is a tenant as platform administrators see it.
type AdminTenantView struct {
	ID           string     `json:"id" format:"uuid"`
	Name         string     `json:"name"`
	DatabaseName string     `json:"database_name"`
	IsActive     bool       `json:"is_active" doc:"False when deactivated or deleted: its members no longer find it."`
	CreatedAt    time.Time  `json:"created_at"`
	DeletedAt    *time.Time `json:"deleted_at" doc:"When it was deleted; null if it was not. It can be restored for the retention period after."`
	Members      int64      `json:"members"`
}

type adminTenantList struct {
	Tenants    []AdminTenantView `json:"tenants"`
	Pagination pagination        `json:"pagination"`
}

type adminUsageView struct {
	Documents     int64 `json:"documents"`
	Files         int64 `json:"files"`
	LogicalBytes  int64 `json:"logical_bytes" doc:"Bytes of every document's content."`
	PhysicalBytes int64 `json:"physical_bytes" doc:"Bytes actually stored, each distinct content once: what the storage quota counts."`
	Members       int64 `json:"members"`
}

// AdminLimitsView is a tenant's limits; null is unlimited.
type AdminLimitsView struct {
	Storage   *int64 `json:"storage" doc:"Bytes, each distinct content once; null for unlimited."`
	Documents *int64 `json:"documents" doc:"Null for unlimited."`
	Members   *int64 `json:"members" doc:"Null for unlimited."`
}

type adminTenantDetail struct {
	AdminTenantView
	Quotas AdminLimitsView `json:"quotas"`
	Usage  adminUsageView  `json:"usage"`
}

type adminTenantsInput struct {
	Paging
	Search         text `query:"search" maxLength:"255" doc:"Only tenants whose name or database name contains this, case-insensitively."`
	IncludeDeleted bool `query:"include_deleted" doc:"Also list deleted tenants, until their purge begins."`
}

type adminQuotasInput struct {
	TenantPath
	Body struct {
		Storage   *int64 `json:"storage,omitempty" minimum:"0" nullable:"true" doc:"Bytes; null or left out for unlimited."`
		Documents *int64 `json:"documents,omitempty" minimum:"0" nullable:"true" doc:"Null or left out for unlimited."`
		Members   *int64 `json:"members,omitempty" minimum:"0" nullable:"true" doc:"Null or left out for unlimited."`
	}
}

func viewAdminTenant(t *tenant.AdminTenant) AdminTenantView {
	return AdminTenantView{ID: t.ID, Name: t.Name, DatabaseName: t.DatabaseName, IsActive: t.IsActive, CreatedAt: t.CreatedAt.UTC(),
		DeletedAt: optionalTime(t.DeletedAt), Members: t.Members}
}

func viewLimits(l quota.Limits) AdminLimitsView {
	return AdminLimitsView{Storage: l.Storage, Documents: l.Documents, Members: l.Members}
}

// adminTenant answers a tenant's detail, its limits and usage included.
func (s *Server) adminTenant(ctx context.Context, message string, t *tenant.AdminTenant) (*response[adminTenantDetail], error) {
	rep, err := s.svc.Documents.TenantStorage(ctx, &t.Tenant)
	if err != nil {
		return nil, err
	}
	return ok(message, adminTenantDetail{AdminTenantView: viewAdminTenant(t), Quotas: viewLimits(rep.Limits), Usage: adminUsageView{
		Documents: rep.Documents, Files: rep.Files, LogicalBytes: rep.LogicalBytes, PhysicalBytes: rep.PhysicalBytes, Members: rep.Members,
	}}), nil
}

func (s *Server) registerAdminTenants() {
	tags := []string{"Administration"}
	base := adminAPIPrefix + "/tenants"

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-list-tenants", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "Every tenant, newest first (platform administrators)",
		Description: "Active and deactivated tenants, whoever their members; deleted ones too with include_deleted. " +
			"Searches the name and database name, and pages by number.",
		Errors: []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *adminTenantsInput) (*response[adminTenantList], error) {
		list, total, err := s.svc.Tenants.ListAll(ctx, tenant.TenantFilter{Search: string(in.Search), IncludeDeleted: in.IncludeDeleted,
			Page: in.Page, PerPage: in.PerPage})
		if err != nil {
			return nil, err
		}
		out := make([]AdminTenantView, len(list))
		for i := range list {
			out[i] = viewAdminTenant(&list[i])
		}
		return ok("Tenants retrieved successfully", adminTenantList{Tenants: out, Pagination: in.Paging.of(total)}), nil
	})

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-get-tenant", Method: http.MethodGet, Path: base + "/{tenant_id}", Tags: tags,
		Summary:     "A tenant, its quotas and usage (platform administrators)",
		Description: "Whatever its state, deleted included, until its purge begins.",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *TenantPath) (*response[adminTenantDetail], error) {
		t, err := s.svc.Tenants.AdminGet(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		return s.adminTenant(ctx, "Tenant retrieved successfully", t)
	})

	for _, a := range []struct {
		id, path, summary, description, message string
		do                                      func(context.Context, string) (*tenant.AdminTenant, error)
	}{
		{"admin-deactivate-tenant", "/deactivate", "Deactivate a tenant (platform administrators)",
			"Its members no longer find it (404), and its data stays as it is, with no retention period. A tenant already " +
				"deactivated is answered as it is; a deleted one is restored instead (409).",
			"Tenant deactivated", func(ctx context.Context, id string) (*tenant.AdminTenant, error) {
				return s.svc.Tenants.SetActive(ctx, id, false)
			}},
		{"admin-activate-tenant", "/activate", "Activate a deactivated tenant again (platform administrators)",
			"Its members find it again as it was. An active tenant is answered as it is; a deleted one is restored instead (409).",
			"Tenant activated", func(ctx context.Context, id string) (*tenant.AdminTenant, error) {
				return s.svc.Tenants.SetActive(ctx, id, true)
			}},
		{"admin-restore-tenant", "/restore", "Restore a deleted tenant (platform administrators)",
			"Within its retention period, brings it back as it was, members, documents and files. A tenant not deleted, " +
				"past its retention period, being purged or purged is a conflict (409).",
			"Tenant restored", func(ctx context.Context, id string) (*tenant.AdminTenant, error) {
				if _, err := s.svc.Lifecycle.Restore(ctx, id); err != nil {
					return nil, err
				}
				return s.svc.Tenants.AdminGet(ctx, id)
			}},
	} {
		huma.Register(s.api, platformOnly(huma.Operation{
			OperationID: a.id, Method: http.MethodPost, Path: base + "/{tenant_id}" + a.path, Tags: tags,
			Summary: a.summary, Description: a.description,
			Errors: []int{http.StatusBadRequest, http.StatusConflict},
		}), func(ctx context.Context, in *TenantPath) (*response[adminTenantDetail], error) {
			t, err := a.do(ctx, in.id(ctx))
			if err != nil {
				return nil, err
			}
			return s.adminTenant(ctx, a.message, t)
		})
	}

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-set-tenant-quotas", Method: http.MethodPut, Path: base + "/{tenant_id}/quotas", Tags: tags,
		Summary: "Set a tenant's quotas (platform administrators)",
		Description: "Replaces the three limits at once: each given is the tenant's own limit (0 or more; bytes for storage), " +
			"each null or left out makes the quota unlimited for the tenant. A limit below what the tenant uses refuses " +
			"what would add to it, and takes nothing away. To fall back on the configured defaults, use the command line's " +
			"`tenants set-quota ID --storage-mb default` and the like.",
		Errors: []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *adminQuotasInput) (*response[AdminLimitsView], error) {
		b := in.Body
		l, err := s.svc.Tenants.SetLimits(ctx, in.id(ctx), quota.Limits{Storage: b.Storage, Documents: b.Documents, Members: b.Members})
		if err != nil {
			return nil, err
		}
		return ok("Tenant quotas updated", viewLimits(l)), nil
	})
}
