package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/audit"
)

// adminAPIPrefix is where the API's platform administration operations
// live; they answer in the API's envelope, unlike the pages under /admin.
const adminAPIPrefix = "/api/admin"

type adminAuditListInput struct {
	AuditFilters
}

// registerAdminAudit serves the platform's own audit chain, the one
// `tenantry audit verify` checks beside the tenants': sign-ins, sign-ups,
// account changes and everything else not tied to one tenant.
func (s *Server) registerAdminAudit() {
	tags := []string{"Audit"}
	base := adminAPIPrefix + "/audit"

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "list-platform-audit-entries", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "The platform's audit trail, newest first (platform administrators)",
		Description: "Every state-changing request not tied to one tenant (sign-ups, sign-ins, account changes, " +
			"tenant creation) and every platform security event, with who, what, the outcome and where from. " +
			"Filters and pages like a tenant's audit trail.",
		Errors: []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *adminAuditListInput) (*response[auditList], error) {
		return s.listAudit(ctx, audit.PlatformChain, &in.AuditFilters)
	})

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "verify-platform-audit-chain", Method: http.MethodGet, Path: base + "/verify", Tags: tags,
		Summary: "Check that the platform's audit trail is intact (platform administrators)",
		Description: "Recomputes the platform chain's hashes and reports the first entry edited, deleted, inserted " +
			"or out of place. A broken chain is reported in the data, with status 200.",
	}), func(ctx context.Context, _ *struct{}) (*response[auditVerification], error) {
		return s.verifyAuditChain(ctx, audit.PlatformChain)
	})
}
