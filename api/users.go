package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/account"
)

type updateMeInput struct {
	Body struct {
		FirstName *text   `json:"first_name,omitempty" doc:"1 to 100 characters; trimmed; no control characters."`
		LastName  *text   `json:"last_name,omitempty" doc:"1 to 100 characters; trimmed; no control characters."`
		Locale    *string `json:"locale,omitempty" enum:"en,fr" doc:"The language of your mails."`
	}
}

type changePasswordInput struct {
	Body struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password" doc:"8 to 128 characters with at least one letter and one digit."`
	}
}

type passwordChanged struct {
	RevokedSessions int64 `json:"revoked_sessions" doc:"How many of your other sessions were signed out."`
}

func (s *Server) registerUsers() {
	tags := []string{"Users"}

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: "/api/users/me", Tags: tags,
		Summary:     "Your profile",
		Description: "Your account as stored.",
	}), func(ctx context.Context, _ *struct{}) (*response[UserView], error) {
		u, err := s.svc.Accounts.Me(ctx)
		if err != nil {
			return nil, err
		}
		return ok("User profile retrieved successfully", viewUser(u)), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "update-me", Method: http.MethodPut, Path: "/api/users/me", Tags: tags,
		Summary:     "Change your names or language",
		Description: "Changes your first or last name, or the language of your mails (en or fr); fields left out are unchanged.",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *updateMeInput) (*response[UserView], error) {
		u, err := s.svc.Accounts.UpdateMe(ctx, account.ProfileUpdate{FirstName: (*string)(in.Body.FirstName), LastName: (*string)(in.Body.LastName),
			Locale: in.Body.Locale})
		if err != nil {
			return nil, err
		}
		return ok("User profile updated successfully", viewUser(u)), nil
	})

	huma.Register(s.api, ownerOnly(huma.Operation{
		OperationID: "change-my-password", Method: http.MethodPut, Path: "/api/users/me/password", Tags: tags,
		Summary:     "Change your password",
		Description: "Requires the current password. Signs out every other session of the account.",
		Errors:      []int{http.StatusBadRequest, http.StatusLocked},
	}), func(ctx context.Context, in *changePasswordInput) (*response[passwordChanged], error) {
		n, err := s.svc.Accounts.ChangePassword(ctx, in.Body.CurrentPassword, in.Body.NewPassword)
		if err != nil {
			return nil, err
		}
		return ok("Password changed successfully", passwordChanged{RevokedSessions: n}), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-my-tenants", Method: http.MethodGet, Path: "/api/users/me/tenants", Tags: tags,
		Summary:     "Your active tenants, with your role in each",
		Description: "The same list as GET /api/tenants.",
	}), func(ctx context.Context, _ *struct{}) (*response[[]TenantView], error) {
		list, err := s.svc.Tenants.ListMine(ctx)
		if err != nil {
			return nil, err
		}
		return ok("User tenants retrieved successfully", viewMemberTenants(list)), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "users-health", Method: http.MethodGet, Path: "/api/users/health", Tags: tags,
		Summary:     "Users API health",
		Description: "Answers 200 while the users API serves requests. Checks no dependency.",
	}, func(ctx context.Context, _ *struct{}) (*response[serviceHealth], error) {
		return ok("Users API is healthy", serviceHealth{Status: "healthy", Service: "users"}), nil
	})
}
