package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/tenant"
)

// accepted returns a 202 response whose data is null.
func accepted(message string) *response[*noData] {
	return &response[*noData]{Status: http.StatusAccepted, Body: envelope[*noData]{Success: true, Message: message}}
}

// limitAddress spends one unit of an email address's budget on limiter,
// whether or not an account has the address.
func (s *Server) limitAddress(ctx context.Context, action, emailAddr string) error {
	if s.svc.MailAddressLimiter == nil {
		return nil
	}
	e := strings.ToLower(strings.TrimSpace(emailAddr))
	ok, wait, err := s.svc.MailAddressLimiter.Allow(ctx, action+":"+e)
	if err != nil {
		loggerFrom(ctx, s.logger).WarnContext(ctx, "rate limiter unavailable; request allowed", "action", action, "error", err)
		return nil
	}
	if !ok {
		return &tenantry.Error{Code: tenantry.ERateLimited, Message: "Too many requests for this address; try again later",
			RetryAfter: max(1, int(wait/time.Second)+1)}
	}
	return nil
}

type emailInput struct {
	Body struct {
		Email text `json:"email" doc:"The account's address." example:"ada@example.com"`
	}
}

type tokenInput struct {
	Body struct {
		Token string `json:"token" maxLength:"256" doc:"The token of the link mailed (its token query parameter)."`
	}
}

type resetConfirmInput struct {
	Body struct {
		Token       string `json:"token" maxLength:"256" doc:"The token of the reset link mailed (its token query parameter)."`
		NewPassword string `json:"new_password" doc:"8 to 128 characters with at least one letter and one digit."`
	}
}

type passwordReset struct {
	RevokedSessions int64 `json:"revoked_sessions" doc:"How many sessions of the account were signed out."`
}

// The answers of requests whose outcome must not tell which addresses
// have accounts: one body, whatever happens next.
const (
	resetRequested        = "If an account has this address, a link to reset its password is on its way"
	verificationRequested = "If an account that is not verified has this address, a new verification link is on its way"
)

func (s *Server) registerMailAuth() {
	tags := []string{"Authentication"}

	huma.Register(s.api, huma.Operation{
		OperationID: "password-reset-request", Method: http.MethodPost, Path: "/api/auth/password-reset/request", Tags: tags,
		Summary: "Ask for a password reset link",
		Description: "Always answers 202 with the same body, in the same time, whether or not an account has the address: " +
			"the lookup and the mail happen later, in a job. The link points at the front end's " +
			"`/reset-password?token=…` (TENANTRY_APP_URL), works once, for one hour, and only for the latest address " +
			"of the account. Limited per client address (TENANTRY_RATE_LIMIT_MAIL) and per email address " +
			"(TENANTRY_RATE_LIMIT_MAIL_PER_ADDRESS), counted alike for every address.",
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusBadRequest, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *emailInput) (*response[*noData], error) {
		if err := s.limit(ctx, s.svc.MailLimiter, "mail"); err != nil {
			return nil, err
		}
		if err := s.limitAddress(ctx, "password_reset", string(in.Body.Email)); err != nil {
			return nil, err
		}
		if err := s.svc.Accounts.RequestPasswordReset(ctx, string(in.Body.Email)); err != nil {
			return nil, err
		}
		return accepted(resetRequested), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "password-reset-confirm", Method: http.MethodPost, Path: "/api/auth/password-reset/confirm", Tags: tags,
		Summary: "Choose a new password with a reset link's token",
		Description: "Sets the password, signs out every session of the account, lifts its sign-in lockout, retires its " +
			"other reset links, counts its address as verified and mails it a security alert. A token that was used, " +
			"expired, tampered with or never issued is refused alike (400 INVALID_TOKEN).",
		Errors: []int{http.StatusBadRequest, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *resetConfirmInput) (*response[passwordReset], error) {
		if err := s.limit(ctx, s.svc.MailLimiter, "mail"); err != nil {
			return nil, err
		}
		n, err := s.svc.Accounts.ConfirmPasswordReset(ctx, in.Body.Token, in.Body.NewPassword)
		if err != nil {
			return nil, err
		}
		return ok("Password reset successfully; sign in with the new password", passwordReset{RevokedSessions: n}), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "verify-email", Method: http.MethodPost, Path: "/api/auth/verify-email", Tags: tags,
		Summary: "Verify an address with a verification link's token",
		Description: "The link mailed at registration points at the front end's `/verify-email?token=…`; the front end " +
			"posts the token here. It works once, for 48 hours. A token that is not good is refused alike (400 INVALID_TOKEN).",
		Errors: []int{http.StatusBadRequest, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *tokenInput) (*response[userData], error) {
		if err := s.limit(ctx, s.svc.MailLimiter, "mail"); err != nil {
			return nil, err
		}
		u, err := s.svc.Accounts.VerifyEmail(ctx, in.Body.Token)
		if err != nil {
			return nil, err
		}
		return ok("Email address verified", userData{User: viewUser(u)}), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "resend-verification", Method: http.MethodPost, Path: "/api/auth/resend-verification", Tags: tags,
		Summary: "Ask for another verification link",
		Description: "Always answers 202 with the same body, in the same time, whether or not an account has the address, " +
			"and whether or not it is verified. Limited like password reset requests.",
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{http.StatusBadRequest, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *emailInput) (*response[*noData], error) {
		if err := s.limit(ctx, s.svc.MailLimiter, "mail"); err != nil {
			return nil, err
		}
		if err := s.limitAddress(ctx, "verification", string(in.Body.Email)); err != nil {
			return nil, err
		}
		if err := s.svc.Accounts.ResendVerification(ctx, string(in.Body.Email)); err != nil {
			return nil, err
		}
		return accepted(verificationRequested), nil
	})
}

// deliveryView is a mail delivery as administrators see it.
type deliveryView struct {
	ID        string     `json:"id" format:"uuid"`
	Kind      string     `json:"kind" enum:"welcome,verify_email,password_reset,invitation,security_alert,account_exists,test"`
	To        string     `json:"to"`
	UserID    *string    `json:"user_id" format:"uuid" doc:"The account the mail is about, if any."`
	TenantID  *string    `json:"tenant_id" format:"uuid" doc:"The tenant the mail is about (invitations)."`
	Locale    string     `json:"locale"`
	Status    string     `json:"status" enum:"queued,retrying,sent,refused,failed,cancelled" doc:"refused: the server refused it for good (5xx), not retried; failed: every attempt failed; cancelled: no longer needed when its turn came."`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error" doc:"Why the last attempt failed; empty after a success."`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	SentAt    *time.Time `json:"sent_at"`
}

type deliveryList struct {
	Deliveries []deliveryView `json:"deliveries"`
	Pagination pagination     `json:"pagination"`
}

type adminMailInput struct {
	Paging
	Status string `query:"status" enum:"queued,retrying,sent,refused,failed,cancelled" doc:"Only deliveries in this status."`
	Kind   string `query:"kind" enum:"welcome,verify_email,password_reset,invitation,security_alert,account_exists,test" doc:"Only mails of this kind."`
	To     text   `query:"to" maxLength:"255" doc:"Only mails to this address."`
}

func viewDelivery(d *mailer.Delivery) deliveryView {
	v := deliveryView{ID: d.ID, Kind: d.Kind, To: d.To, UserID: optional(d.UserID), TenantID: optional(d.TenantID), Locale: d.Locale,
		Status: d.Status, Attempts: d.Attempts, LastError: d.LastError, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if d.SentAt != nil {
		t := d.SentAt.UTC()
		v.SentAt = &t
	}
	return v
}

func (s *Server) registerAdminMail() {
	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "list-mail-deliveries", Method: http.MethodGet, Path: adminAPIPrefix + "/mail", Tags: []string{"Mail"},
		Summary: "Recent mail deliveries and failures, newest first (platform administrators)",
		Description: "Every mail queued in the last 30 days, with its status, attempts and the last error. Mails go through " +
			"the job queue with retries and backoff; a permanent refusal is recorded as refused and not retried.",
		Errors: []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *adminMailInput) (*response[deliveryList], error) {
		list, total, err := s.svc.Mailer.List(ctx, mailer.Filter{Status: in.Status, Kind: in.Kind, To: string(in.To), Page: in.Page, PerPage: in.PerPage})
		if err != nil {
			return nil, err
		}
		out := make([]deliveryView, len(list))
		for i := range list {
			out[i] = viewDelivery(&list[i])
		}
		return ok("Mail deliveries retrieved successfully", deliveryList{Deliveries: out, Pagination: in.Paging.of(total)}), nil
	})
}

// invitationView is an invitation as the API shows it.
type invitationView struct {
	ID         string    `json:"id" format:"uuid"`
	TenantID   string    `json:"tenant_id" format:"uuid"`
	Email      string    `json:"email"`
	Role       string    `json:"role" doc:"admin, user, viewer or one of the tenant's own roles."`
	InvitedBy  string    `json:"invited_by" format:"uuid"`
	CreatedAt  time.Time `json:"created_at"`
	LastSentAt time.Time `json:"last_sent_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Expired    bool      `json:"expired" doc:"An expired invitation no longer works; resending it renews it."`
}

func viewInvitation(inv *tenant.Invitation) invitationView {
	return invitationView{ID: inv.ID, TenantID: inv.TenantID, Email: inv.Email, Role: string(inv.Role), InvitedBy: inv.InvitedBy,
		CreatedAt: inv.CreatedAt.UTC(), LastSentAt: inv.LastSentAt.UTC(), ExpiresAt: inv.ExpiresAt.UTC(), Expired: !inv.ExpiresAt.After(time.Now())}
}

type invitationList struct {
	Invitations []invitationView `json:"invitations"`
	Pagination  pagination       `json:"pagination"`
}

type createInvitationInput struct {
	TenantPath
	Body struct {
		Email text   `json:"email" doc:"The address to invite." example:"grace@example.com"`
		Role  string `json:"role" doc:"admin, user or viewer; not above yours."`
	}
}

// InvitationPath names one invitation of a tenant.
type InvitationPath struct {
	TenantPath
	InvitationID resourceID `path:"invitation_id" doc:"Invitation id."`
}

type listInvitationsInput struct {
	TenantPath
	Paging
}

type acceptInvitationInput struct {
	Authorization string `header:"Authorization" doc:"Bearer <access token> to accept as the signed-in account; leave out to create an account."`
	Body          struct {
		Token     string `json:"token" maxLength:"256" doc:"The token of the invitation link mailed (its token query parameter)."`
		FirstName *text  `json:"first_name,omitempty" doc:"With last_name and password, creates the account: 1 to 100 characters."`
		LastName  *text  `json:"last_name,omitempty" doc:"1 to 100 characters."`
		Password  string `json:"password,omitempty" doc:"8 to 128 characters with at least one letter and one digit."`
		Locale    string `json:"locale,omitempty" enum:"en,fr" doc:"The language of the new account's mails."`
	}
}

type acceptedInvitation struct {
	TenantID       string `json:"tenant_id" format:"uuid"`
	TenantName     string `json:"tenant_name"`
	Role           string `json:"role" maxLength:"63" doc:"admin, user, viewer or one of the tenant's own roles; it may grant only permissions you hold."`
	UserID         string `json:"user_id" format:"uuid"`
	CreatedAccount bool   `json:"created_account" doc:"Whether accepting created the account; it then signs in with the password given."`
}

func (s *Server) registerInvitations() {
	tags := []string{"Invitations"}
	base := "/api/tenants/{tenant_id}/invitations"

	huma.Register(s.api, quotaLimited(requires(permission.MembersAdd, huma.Operation{
		OperationID: "create-invitation", Method: http.MethodPost, Path: base, Tags: tags,
		Summary: "Invite an address to join the tenant (admins)",
		Description: "Mails the address a link to the front end's `/invitations/accept?token=…` (TENANTRY_APP_URL) that " +
			"works once, for 7 days. The role may grant only permissions you hold. An address that is already a member, or already " +
			"has a pending invitation, is a conflict (409); a tenant at its members quota refuses (403 QUOTA_EXCEEDED).",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
	})), func(ctx context.Context, in *createInvitationInput) (*response[invitationView], error) {
		inv, err := s.svc.Tenants.Invite(ctx, in.id(ctx), string(in.Body.Email), tenantry.Role(in.Body.Role))
		if err != nil {
			return nil, err
		}
		return created("Invitation sent", viewInvitation(inv)), nil
	})

	huma.Register(s.api, requires(permission.MembersAdd, huma.Operation{
		OperationID: "list-invitations", Method: http.MethodGet, Path: base, Tags: tags,
		Summary:     "The tenant's pending invitations, newest first (admins)",
		Description: "Invitations neither accepted nor revoked, expired ones included (resending renews them).",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *listInvitationsInput) (*response[invitationList], error) {
		list, total, err := s.svc.Tenants.ListInvitations(ctx, in.id(ctx), in.Page, in.PerPage)
		if err != nil {
			return nil, err
		}
		out := make([]invitationView, len(list))
		for i := range list {
			out[i] = viewInvitation(&list[i])
		}
		return ok("Invitations retrieved successfully", invitationList{Invitations: out, Pagination: in.Paging.of(total)}), nil
	})

	huma.Register(s.api, requires(permission.MembersAdd, huma.Operation{
		OperationID: "revoke-invitation", Method: http.MethodDelete, Path: base + "/{invitation_id}", Tags: tags,
		Summary:     "Revoke a pending invitation (admins)",
		Description: "Its link stops working at once. An invitation of another tenant, accepted or already revoked is not found.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *InvitationPath) (*response[*noData], error) {
		if err := s.svc.Tenants.RevokeInvitation(ctx, in.id(ctx), in.InvitationID.String()); err != nil {
			return nil, err
		}
		return done("Invitation revoked"), nil
	})

	huma.Register(s.api, requires(permission.MembersAdd, huma.Operation{
		OperationID: "resend-invitation", Method: http.MethodPost, Path: base + "/{invitation_id}/resend", Tags: tags,
		Summary:     "Mail a pending invitation again (admins)",
		Description: "The new link works for 7 days from now; the links mailed before stop working once it is sent.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *InvitationPath) (*response[invitationView], error) {
		inv, err := s.svc.Tenants.ResendInvitation(ctx, in.id(ctx), in.InvitationID.String())
		if err != nil {
			return nil, err
		}
		return ok("Invitation sent again", viewInvitation(inv)), nil
	})

	huma.Register(s.api, quotaLimited(huma.Operation{
		OperationID: "accept-invitation", Method: http.MethodPost, Path: "/api/invitations/accept", Tags: tags,
		Summary: "Accept an invitation",
		Description: "Signed in (a bearer token), joins the tenant as the signed-in account, whose verified address must be " +
			"the invitation's (403 otherwise, EMAIL_NOT_VERIFIED when it is not verified). Not signed in, with " +
			"first_name, last_name and password, creates the account with the invitation's address, verified, then " +
			"joins; an address that already has an account must sign in instead (409). A token that was used, " +
			"revoked, expired, tampered with or never issued is refused alike (400 INVALID_TOKEN).",
		Security: []map[string][]string{{}, {"bearer": {}}},
		Errors:   []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict},
	}), func(ctx context.Context, in *acceptInvitationInput) (*response[acceptedInvitation], error) {
		var create tenant.NewAccount
		if in.Authorization != "" {
			raw, err := bearerToken(in.Authorization)
			if err != nil {
				return nil, err
			}
			p, err := s.svc.Accounts.Authenticate(ctx, raw)
			if err != nil {
				return nil, err
			}
			if info := infoFrom(ctx); info != nil {
				info.userID = p.UserID
			}
			ctx = tenantry.NewContextWithPrincipal(ctx, p)
		} else {
			errs := tenantry.FieldErrors{}
			if in.Body.FirstName == nil {
				errs.Add("first_name", "Missing data for required field.")
			}
			if in.Body.LastName == nil {
				errs.Add("last_name", "Missing data for required field.")
			}
			if in.Body.Password == "" {
				errs.Add("password", "Missing data for required field.")
			}
			if len(errs) > 0 {
				return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Sign in to accept, or give first_name, last_name and password to create your account",
					Details: map[string][]string(errs)}
			}
			fn, err := s.svc.Accounts.InvitedAccount(ctx, account.Registration{FirstName: string(*in.Body.FirstName),
				LastName: string(*in.Body.LastName), Password: in.Body.Password, Locale: in.Body.Locale})
			if err != nil {
				return nil, err
			}
			create = fn
		}
		res, err := s.svc.Tenants.AcceptInvitation(ctx, in.Body.Token, create)
		if err != nil {
			return nil, err
		}
		if info := infoFrom(ctx); info != nil {
			info.tenantID = res.TenantID
		}
		return ok("Invitation accepted", acceptedInvitation{TenantID: res.TenantID, TenantName: res.TenantName, Role: string(res.Role),
			UserID: res.UserID, CreatedAccount: res.Created}), nil
	})
}
