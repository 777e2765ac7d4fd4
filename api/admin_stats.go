package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/sqldb"
)

// statsDays is how far back the daily figures go.
const statsDays = 30

type dayCountView struct {
	Date  string `json:"date" format:"date" example:"2026-12-01"`
	Count int64  `json:"count"`
}

type platformStats struct {
	Users struct {
		Total          int64 `json:"total"`
		Active         int64 `json:"active"`
		PlatformAdmins int64 `json:"platform_admins"`
	} `json:"users"`
	Tenants struct {
		Active      int64 `json:"active"`
		Deactivated int64 `json:"deactivated"`
		Deleted     int64 `json:"deleted" doc:"Deleted and still restorable, their purge not begun."`
	} `json:"tenants"`
	Documents    int64          `json:"documents"`
	StorageBytes int64          `json:"storage_bytes" doc:"Bytes stored, each distinct content of a tenant once: what storage quotas count."`
	SignUps      []dayCountView `json:"sign_ups" doc:"Accounts created per UTC day over the last 30 days, oldest first; days without any are left out."`
	TenantsAdded []dayCountView `json:"tenants_created" doc:"Tenants created per UTC day over the last 30 days, oldest first; days without any are left out."`
}

func viewDays(list []sqldb.DayCount) []dayCountView {
	out := make([]dayCountView, len(list))
	for i, d := range list {
		out[i] = dayCountView{Date: d.Date, Count: d.Count}
	}
	return out
}

func (s *Server) registerAdminStats() {
	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-get-stats", Method: http.MethodGet, Path: adminAPIPrefix + "/stats", Tags: []string{"Administration"},
		Summary: "Platform figures (platform administrators)",
		Description: "Accounts, tenants by state, documents and stored bytes, and sign-ups and tenants created per day over " +
			"the last 30 days (today included; days without any left out). Accounts and tenants are counted in the control " +
			"database. Documents and bytes are not kept there: they add up the running totals each tenant's database keeps " +
			"(a read of a few rows per tenant), over every tenant whose data is stored, deactivated and deleted ones included.",
	}), func(ctx context.Context, _ *struct{}) (*response[platformStats], error) {
		now := time.Now().UTC()
		since := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-statsDays)
		users, err := s.svc.Accounts.Stats(ctx, since)
		if err != nil {
			return nil, err
		}
		tenants, err := s.svc.Tenants.Stats(ctx, since)
		if err != nil {
			return nil, err
		}
		usage, err := s.svc.Documents.PlatformUsage(ctx)
		if err != nil {
			return nil, err
		}
		var out platformStats
		out.Users.Total, out.Users.Active, out.Users.PlatformAdmins = users.Total, users.Active, users.PlatformAdmins
		out.Tenants.Active, out.Tenants.Deactivated, out.Tenants.Deleted = tenants.Active, tenants.Deactivated, tenants.Deleted
		out.Documents, out.StorageBytes = usage.Documents, usage.PhysicalBytes
		out.SignUps, out.TenantsAdded = viewDays(users.SignUps), viewDays(tenants.Created)
		return ok("Platform statistics retrieved successfully", out), nil
	})
}
