package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
)

type impersonateInput struct {
	Body struct {
		UserID resourceID `json:"user_id" doc:"The account to act as. Platform administrators cannot be impersonated."`
		Reason text       `json:"reason" minLength:"1" maxLength:"500" doc:"Why: kept with the session and in the audit trail, 1 to 500 characters." example:"Reproduce ticket 4182: upload refused"`
	}
}

type impersonationView struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type" example:"Bearer"`
	ExpiresIn   int       `json:"expires_in" doc:"Seconds until the token and the impersonation end." example:"900"`
	ExpiresAt   time.Time `json:"expires_at"`
	SessionID   string    `json:"session_id" format:"uuid"`
	User        UserView  `json:"user"`
}

type impersonationEnded struct {
	SessionID string `json:"session_id" format:"uuid"`
}

func (s *Server) registerImpersonation() {
	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "impersonate-user", Method: http.MethodPost, Path: adminAPIPrefix + "/impersonate", Tags: []string{"Administration"},
		Summary: "Act as a user, to see what they see (platform administrators)",
		Description: "Returns an access token for the user whose claims name the administrator as actor (RFC 8693 `act`), " +
			"valid 15 minutes, with no refresh token. With it the administrator cannot change the account's password, " +
			"identities or sessions, nor use platform administration. Every request made with it, reads included, is " +
			"audited under both people; the user is mailed, and sees the impersonation in their security events. " +
			"`POST /api/auth/end-impersonation` ends it early.",
		Errors: []int{http.StatusBadRequest, http.StatusConflict},
	}), func(ctx context.Context, in *impersonateInput) (*response[impersonationView], error) {
		imp, err := s.svc.Accounts.Impersonate(ctx, in.Body.UserID.String(), string(in.Body.Reason))
		if err != nil {
			return nil, err
		}
		return ok("Impersonation started", impersonationView{
			AccessToken: imp.AccessToken, TokenType: "Bearer", ExpiresIn: int(time.Until(imp.ExpiresAt).Seconds()),
			ExpiresAt: imp.ExpiresAt, SessionID: imp.SessionID, User: viewUser(imp.User),
		}), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "end-impersonation", Method: http.MethodPost, Path: "/api/auth/end-impersonation", Tags: []string{"Authentication"},
		Summary:     "End the impersonation this token was issued for",
		Description: "Sent with the token `POST /api/admin/impersonate` returned: the token stops working at once. Other tokens are refused (400).",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, _ *struct{}) (*response[impersonationEnded], error) {
		if err := s.svc.Accounts.EndImpersonation(ctx); err != nil {
			return nil, err
		}
		p, _ := tenantry.PrincipalFromContext(ctx)
		return ok("Impersonation ended", impersonationEnded{SessionID: p.SessionID}), nil
	})
}
