package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/cursor"
)

type sessionView struct {
	ID         string    `json:"id" format:"uuid"`
	Device     string    `json:"device" doc:"A short label read from the user agent: Firefox on Linux, curl, Unknown device. Clients choose their user agent: it is a hint, not a proof." example:"Firefox on Linux"`
	UserAgent  string    `json:"user_agent" doc:"As the client sent it when the session was opened."`
	ClientIP   string    `json:"client_ip" doc:"The client address the session was opened from."`
	AuthMethod string    `json:"auth_method" enum:"password,sso,impersonation" doc:"How the session was opened: a password, a tenant's single sign-on, or a platform administrator acting as the account."`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at" doc:"When a request last used the session, to within a minute."`
	ExpiresAt  time.Time `json:"expires_at" doc:"When the session ends unless refreshed before."`
	Current    bool      `json:"current" doc:"Whether this is the session of the request's own access token; always false in administration."`
}

type sessionList struct {
	Sessions []sessionView `json:"sessions"`
	Total    int           `json:"total"`
}

type sessionsRevoked struct {
	RevokedSessions int64 `json:"revoked_sessions" doc:"How many sessions were signed out."`
}

type sessionPath struct {
	SessionID resourceID `path:"session_id" doc:"Session id."`
}

type userPath struct {
	UserID resourceID `path:"user_id" doc:"User id."`
}

func viewSessions(list []account.Session) sessionList {
	out := sessionList{Sessions: make([]sessionView, len(list)), Total: len(list)}
	for i, s := range list {
		out.Sessions[i] = sessionView{ID: s.ID, Device: s.Device, UserAgent: s.UserAgent, ClientIP: s.ClientIP, AuthMethod: s.AuthMethod,
			CreatedAt: s.CreatedAt.UTC(), LastUsedAt: s.LastUsedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(), Current: s.Current}
	}
	return out
}

func (s *Server) registerSessions() {
	tags := []string{"Users"}
	base := "/api/users/me/sessions"

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-my-sessions", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "Your signed-in sessions",
		Description: "Every session of your account neither signed out nor expired, newest first, with the device it was " +
			"opened from; current marks the one of this request's access token.",
	}), func(ctx context.Context, _ *struct{}) (*response[sessionList], error) {
		list, err := s.svc.Accounts.MySessions(ctx)
		if err != nil {
			return nil, err
		}
		return ok("Sessions retrieved successfully", viewSessions(list)), nil
	})

	huma.Register(s.api, ownerOnly(huma.Operation{
		OperationID: "revoke-my-session", Method: http.MethodDelete, Path: base + "/{session_id}", Tags: tags,
		Summary: "Sign out one of your sessions",
		Description: "Its access and refresh tokens stop working at once. Signing out the current session works like " +
			"logging out. A session that is not yours, or no longer stands, is not found.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *sessionPath) (*response[*noData], error) {
		if err := s.svc.Accounts.RevokeMySession(ctx, in.SessionID.String()); err != nil {
			return nil, err
		}
		return done("Session revoked successfully"), nil
	})

	huma.Register(s.api, ownerOnly(huma.Operation{
		OperationID: "revoke-my-other-sessions", Method: http.MethodDelete, Path: base, Tags: tags,
		Summary:     "Sign out all your other sessions",
		Description: "Every session of your account but the current one; their tokens stop working at once.",
	}), func(ctx context.Context, _ *struct{}) (*response[sessionsRevoked], error) {
		n, err := s.svc.Accounts.RevokeMyOtherSessions(ctx)
		if err != nil {
			return nil, err
		}
		return ok("Other sessions revoked successfully", sessionsRevoked{RevokedSessions: n}), nil
	})

	admin := adminAPIPrefix + "/users/{user_id}/sessions"
	adminTags := []string{"Administration"}

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "list-user-sessions", Method: http.MethodGet, Path: admin, Tags: adminTags,
		Summary:     "An account's signed-in sessions (platform administrators)",
		Description: "What the account's owner sees at /api/users/me/sessions, current always false.",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *userPath) (*response[sessionList], error) {
		list, err := s.svc.Accounts.UserSessions(ctx, in.UserID.String())
		if err != nil {
			return nil, err
		}
		return ok("Sessions retrieved successfully", viewSessions(list)), nil
	})

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "revoke-user-sessions", Method: http.MethodDelete, Path: admin, Tags: adminTags,
		Summary:     "Sign out every session of an account (platform administrators)",
		Description: "Their tokens stop working at once; the account's owner can sign in again.",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *userPath) (*response[sessionsRevoked], error) {
		n, err := s.svc.Accounts.RevokeUserSessions(ctx, in.UserID.String())
		if err != nil {
			return nil, err
		}
		return ok("Sessions revoked successfully", sessionsRevoked{RevokedSessions: n}), nil
	})

	if s.svc.Audit != nil {
		s.registerSecurityEvents()
	}
}

type securityEventsInput struct {
	Paging
}

type securityEventView struct {
	ID         string          `json:"id"`
	Type       string          `json:"type" doc:"The audit action: auth.login, user.password_change, user.session.revoke…" example:"auth.login"`
	Outcome    string          `json:"outcome" doc:"success; failure (refused for its input); denied (refused: a wrong password, a lock, a revoked token); or error." example:"success"`
	OccurredAt time.Time       `json:"occurred_at"`
	ClientIP   string          `json:"client_ip"`
	UserAgent  string          `json:"user_agent"`
	Device     string          `json:"device" doc:"A short label read from the user agent." example:"Firefox on Linux"`
	Details    json.RawMessage `json:"details" doc:"JSON object of what the event recorded that concerns you: error_code of a refusal, failed_logins and locked_until of a lockout, revoked_sessions, session_id, reason, new_device, the provider_type and tenant_id of a single sign-on, and the administrator_id of an impersonation."`
}

type securityEvents struct {
	Events     []securityEventView `json:"events"`
	Pagination pagination          `json:"pagination"`
}

// securityActions are the audit actions of a user's security history:
// sign-ins, password changes and resets, signing out and revocations,
// single sign-on, and impersonation by an administrator.
var securityActions = []string{ //nolint:gochecknoglobals // read-only table
	"auth.login", "auth.sso.login", "auth.sso.exchange", "auth.sso.link",
	"user.password_change", "auth.password_reset",
	"auth.logout", "auth.sso.logout", "user.session.revoke", "user.sessions.revoke_others", "admin.user.sessions.revoke",
	"admin.impersonate", "auth.end_impersonation",
}

// securityFailures are the actions of the history only when refused: a
// refresh refused for the reuse of its token revokes the session, the
// others are routine.
var securityFailures = []string{"auth.refresh"} //nolint:gochecknoglobals // read-only table

// securityDetails are the annotations a user is shown: facts about their
// own account, never tokens, hashes or other people's data.
var securityDetails = []string{ //nolint:gochecknoglobals // read-only table
	"error_code", "failed_logins", "locked_until", "revoked_sessions", "session_revoked", "session_id", "current",
	"reason", "new_device", "provider_type", "linked", "provisioned",
}

// impersonations are the actions whose actor, an administrator, the
// impersonated user is told.
var impersonations = map[string]bool{"admin.impersonate": true, "auth.end_impersonation": true} //nolint:gochecknoglobals // read-only table

func (s *Server) registerSecurityEvents() {
	huma.Register(s.api, secured(huma.Operation{
		OperationID: "list-my-security-events", Method: http.MethodGet, Path: "/api/users/me/security-events", Tags: []string{"Users"},
		Summary: "Your security history, newest first",
		Description: "From the audit trail: sign-ins to your account and refused ones, lockouts, password changes and " +
			"resets, sessions signed out or revoked (by you, for a reused refresh token, or by an administrator), " +
			"single sign-on and identity links, and impersonations of your account by an administrator.",
		Errors: []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *securityEventsInput) (*response[securityEvents], error) {
		me, err := s.svc.Accounts.Me(ctx)
		if err != nil {
			return nil, err
		}
		l, err := s.svc.Audit.ListSubject(ctx, audit.Filter{Subject: me.ID, Actions: securityActions, FailedActions: securityFailures,
			Page: in.Page, PerPage: in.PerPage})
		if err != nil {
			return nil, err
		}
		out := securityEvents{Events: make([]securityEventView, len(l.Entries)),
			Pagination: s.paginate(cursor.Scope{"security-events", me.ID}, in.Page, in.PerPage, l.Total, nil)}
		for i := range l.Entries {
			out.Events[i] = viewSecurityEvent(&l.Entries[i], me.ID)
		}
		return ok("Security events retrieved successfully", out), nil
	})
}

// viewSecurityEvent shows an entry of userID's history with only the
// details that are theirs to see.
func viewSecurityEvent(e *audit.Entry, userID string) securityEventView {
	var all map[string]json.RawMessage
	_ = json.Unmarshal(e.Details, &all) // stored entries are JSON objects
	shown := map[string]json.RawMessage{}
	for _, k := range securityDetails {
		if v, ok := all[k]; ok {
			shown[k] = v
		}
	}
	if e.Chain != audit.PlatformChain {
		shown["tenant_id"], _ = json.Marshal(e.Chain)
	}
	if impersonations[e.Action] {
		// The start is the administrator's act; the end is made with the
		// impersonation's token, so the administrator is in its details.
		if e.ActorID != userID && e.ActorID != "" {
			shown["administrator_id"], _ = json.Marshal(e.ActorID)
		} else if v, ok := all["impersonator_id"]; ok {
			shown["administrator_id"] = v
		}
	}
	details, _ := json.Marshal(shown)
	return securityEventView{ID: e.ID, Type: e.Action, Outcome: e.Outcome, OccurredAt: e.OccurredAt.UTC(), ClientIP: e.ClientIP,
		UserAgent: e.UserAgent, Device: account.Device(e.UserAgent), Details: details}
}
