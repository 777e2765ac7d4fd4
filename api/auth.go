package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/ratelimit"
)

// authMetadataKey marks operations that need an access token.
const authMetadataKey = "authenticate"

// bearerSecurity documents the access token requirement.
var bearerSecurity = []map[string][]string{{"bearer": {}}} //nolint:gochecknoglobals // read-only

// secured returns op requiring a valid access token.
func secured(op huma.Operation) huma.Operation {
	op.Security = bearerSecurity
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[authMetadataKey] = true
	op.Errors = append(op.Errors, http.StatusUnauthorized, http.StatusForbidden)
	return op
}

// platformMetadataKey marks the operations of platform administration.
const platformMetadataKey = "platform"

// platformOnly returns op secured and reserved to platform administrators.
// Everyone else, signed in or not, is told the route does not exist: the
// administration API is not advertised to the people it administers.
func platformOnly(op huma.Operation) huma.Operation {
	op = secured(op)
	op.Metadata[platformMetadataKey] = true
	op.Errors = append(op.Errors, http.StatusNotFound)
	return op
}

// ownerMetadataKey marks the operations only an account's owner may use:
// what changes how the account signs in (password, identities, sessions).
const ownerMetadataKey = "owner"

// ownerOnly returns op secured and refused to an administrator
// impersonating the account, who must not be able to keep access or lock
// its owner out once the impersonation ends.
func ownerOnly(op huma.Operation) huma.Operation {
	op = secured(op)
	op.Metadata[ownerMetadataKey] = true
	return op
}

// errNoSuchRoute is what a platform route answers to anyone who may not use it,
// the same as an unknown path.
func errNoSuchRoute() error {
	return tenantry.Errorf(tenantry.ENotFound, "Not Found")
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header.
func bearerToken(header string) (string, error) {
	if header == "" {
		return "", tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", tenantry.Errorf(tenantry.EUnauthorized, "Expected an 'Authorization: Bearer <token>' header")
	}
	return token, nil
}

// authenticate checks the access token of operations marked secured and puts
// the principal in the request context.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	if ctx.Operation().Metadata[authMetadataKey] != true {
		next(ctx)
		return
	}
	platform := ctx.Operation().Metadata[platformMetadataKey] == true
	raw, err := bearerToken(ctx.Header("Authorization"))
	if err == nil {
		var p tenantry.Principal
		p, err = s.svc.Accounts.Authenticate(ctx.Context(), raw)
		if err == nil {
			if info := infoFrom(ctx.Context()); info != nil {
				info.userID, info.impersonatorID = p.UserID, p.ImpersonatorID
			}
			switch {
			case platform && requirePlatformAdmin(p) != nil:
				_ = huma.WriteErr(s.api, ctx, http.StatusNotFound, "", errNoSuchRoute())
			case p.ImpersonatorID != "" && ctx.Operation().Metadata[ownerMetadataKey] == true:
				_ = huma.WriteErr(s.api, ctx, http.StatusForbidden, "", tenantry.Errorf(tenantry.EForbidden, "Only the account's owner may do this, not an administrator acting as them"))
			case p.ImpersonatorID != "" && !s.audits(ctx):
				// Everything done as someone else is on record, reads too.
				s.audited(ctx, func(ctx huma.Context) {
					next(huma.WithContext(ctx, tenantry.NewContextWithPrincipal(ctx.Context(), p)))
				})
			default:
				next(huma.WithContext(ctx, tenantry.NewContextWithPrincipal(ctx.Context(), p)))
			}
			return
		}
	}
	var verdict *tenantry.Error
	if !errors.As(err, &verdict) {
		// Not a verdict on the token: its session could not be looked up
		// (the control database busy or down), which is ours to answer
		// for, with a 503 the client retries, never a 401 that signs it
		// out.
		_ = huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "", toAPIError(ctx.Context(), loggerFrom(ctx.Context(), s.logger), err))
		return
	}
	if platform {
		_ = huma.WriteErr(s.api, ctx, http.StatusNotFound, "", errNoSuchRoute())
		return
	}
	_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "", err)
}

// limit spends one unit of the client address's budget on limiter. When the
// limiter's store is down the request is let through: the account lockout
// still protects passwords, and an outage of Redis must not stop sign-ins.
func (s *Server) limit(ctx context.Context, limiter ratelimit.Limiter, action string) error {
	if limiter == nil {
		return nil
	}
	ip := tenantry.RequestMetaFromContext(ctx).ClientIP
	ok, wait, err := limiter.Allow(ctx, action+":"+ip)
	if err != nil {
		loggerFrom(ctx, s.logger).WarnContext(ctx, "rate limiter unavailable; request allowed", "action", action, "error", err)
		return nil
	}
	if !ok {
		return &tenantry.Error{
			Code:       tenantry.ERateLimited,
			Message:    "Too many requests; try again later",
			RetryAfter: max(1, int(math.Ceil(wait.Seconds()))),
		}
	}
	return nil
}

type registerInput struct {
	Body struct {
		FirstName text   `json:"first_name" doc:"1 to 100 characters; trimmed; no control characters." example:"Ada"`
		LastName  text   `json:"last_name" doc:"1 to 100 characters; trimmed; no control characters." example:"Lovelace"`
		Email     text   `json:"email" doc:"Lower-cased and trimmed; at most 255 characters; no control characters." example:"ada@example.com"`
		Password  string `json:"password" doc:"8 to 128 characters with at least one letter and one digit." example:"correct-horse-7"`
		Locale    string `json:"locale,omitempty" enum:"en,fr" doc:"The language of the account's mails; en by default."`
	}
}

type userData struct {
	User UserView `json:"user"`
}

type loginInput struct {
	Body struct {
		Email    text   `json:"email" example:"ada@example.com"`
		Password string `json:"password" example:"correct-horse-7"`
	}
}

// TokensView is the credentials a login or a refresh hands out. It and the
// other views embedded in larger ones are exported because huma documents
// the fields of exported embedded structs only: an unexported one would be
// sent by encoding/json yet missing from the OpenAPI document.
type TokensView struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type" example:"Bearer"`
	ExpiresIn    int    `json:"expires_in" doc:"Access token lifetime in seconds." example:"900"`
}

type loginTenant struct {
	ID           string `json:"id" format:"uuid"`
	Name         string `json:"name"`
	DatabaseName string `json:"database_name"`
	Role         string `json:"role" doc:"admin, user, viewer or one of the tenant's own roles."`
}

type loginData struct {
	TokensView
	User    UserView      `json:"user"`
	Tenants []loginTenant `json:"tenants" doc:"Active tenants the user belongs to, with the user's role in each."`
}

type refreshInput struct {
	Authorization string `header:"Authorization" doc:"Bearer <refresh token>, as the original platform expected; or send the token in the body."`
	Body          *struct {
		RefreshToken string `json:"refresh_token"`
	}
}

func tokens(t account.Tokens) TokensView {
	return TokensView{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn}
}

type serviceHealth struct {
	Status    string            `json:"status"`
	Service   string            `json:"service"`
	Endpoints map[string]string `json:"endpoints,omitempty"`
}

func (s *Server) registerAuth() {
	tags := []string{"Authentication"}

	huma.Register(s.api, huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/api/auth/register", Tags: tags,
		Summary: "Create an account",
		Description: "Creates an active account, the password kept only as a hash, and mails the address a verification " +
			"link to the front end's `/verify-email?token=…`. Does not sign in: log in afterwards. An email already " +
			"registered is a conflict (409), unless TENANTRY_REQUIRE_EMAIL_VERIFICATION is on: the answer is then the " +
			"same as for a new address (201, the user as submitted, with an id no account has), and the address's " +
			"owner is mailed that someone tried to register it.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusConflict, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *registerInput) (*response[userData], error) {
		if err := s.limit(ctx, s.svc.RegisterLimiter, "register"); err != nil {
			return nil, err
		}
		u, err := s.svc.Accounts.Register(ctx, account.Registration{
			FirstName: string(in.Body.FirstName), LastName: string(in.Body.LastName), Email: string(in.Body.Email), Password: in.Body.Password,
			Locale: in.Body.Locale,
		})
		if err != nil {
			return nil, err
		}
		return created("User registered successfully", userData{User: viewUser(u)}), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/api/auth/login", Tags: tags,
		Summary:     "Log in with email and password",
		Description: "Opens a session. Unknown emails and wrong passwords get the same answer. Consecutive failures lock the account for a while (423).",
		Errors:      []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusLocked, http.StatusTooManyRequests},
	}, func(ctx context.Context, in *loginInput) (*credentialsResponse[loginData], error) {
		if err := s.limit(ctx, s.svc.LoginLimiter, "login"); err != nil {
			return nil, err
		}
		res, err := s.svc.Accounts.Login(ctx, string(in.Body.Email), in.Body.Password)
		if err != nil {
			return nil, err
		}
		if info := infoFrom(ctx); info != nil {
			info.userID = res.User.ID
		}
		audit.SetActor(ctx, res.User.ID)
		memberships, err := s.svc.Tenants.ListFor(ctx, res.User.ID)
		if err != nil {
			return nil, err
		}
		ts := make([]loginTenant, len(memberships))
		for i, m := range memberships {
			ts[i] = loginTenant{ID: m.ID, Name: m.Name, DatabaseName: m.DatabaseName, Role: string(m.Role)}
		}
		return credentials("Login successful", loginData{TokensView: tokens(res.Tokens), User: viewUser(res.User), Tenants: ts}), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/api/auth/refresh", Tags: tags,
		Summary: "Exchange a refresh token for new tokens",
		Description: "Every refresh returns a new refresh token and retires the one presented. Presenting a retired " +
			"refresh token revokes the whole session.",
		Security: bearerSecurity,
		Errors:   []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden},
	}, func(ctx context.Context, in *refreshInput) (*credentialsResponse[TokensView], error) {
		raw := ""
		if in.Body != nil && in.Body.RefreshToken != "" {
			raw = in.Body.RefreshToken
		} else {
			var err error
			if raw, err = bearerToken(in.Authorization); err != nil {
				return nil, tenantry.Errorf(tenantry.EUnauthorized, "A refresh token is required")
			}
		}
		t, err := s.svc.Accounts.Refresh(ctx, raw)
		if err != nil {
			return nil, err
		}
		return credentials("Token refreshed successfully", tokens(*t)), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/api/auth/logout", Tags: tags,
		Summary:     "Log out: revoke the session of the access token",
		Description: "Revokes the session the access token belongs to: its access and refresh tokens stop working at once.",
	}), func(ctx context.Context, _ *struct{}) (*response[*noData], error) {
		if err := s.svc.Accounts.Logout(ctx); err != nil {
			return nil, err
		}
		return done("Logged out successfully"), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "auth-health", Method: http.MethodGet, Path: "/api/auth/health", Tags: tags,
		Summary:     "Authentication API health",
		Description: "Answers 200 while the authentication API serves requests, listing its endpoints. Checks no dependency.",
	}, func(ctx context.Context, _ *struct{}) (*response[serviceHealth], error) {
		return ok("Authentication API is healthy", serviceHealth{Status: "healthy", Service: "authentication", Endpoints: map[string]string{
			"register": "/api/auth/register (POST)",
			"login":    "/api/auth/login (POST)",
			"refresh":  "/api/auth/refresh (POST)",
			"logout":   "/api/auth/logout (POST)",

			"password_reset_request": "/api/auth/password-reset/request (POST)",
			"password_reset_confirm": "/api/auth/password-reset/confirm (POST)",
			"verify_email":           "/api/auth/verify-email (POST)",
			"resend_verification":    "/api/auth/resend-verification (POST)",
		}}), nil
	})
}

// UserView is an account as the API shows it.
type UserView struct {
	ID            string    `json:"id" format:"uuid"`
	FirstName     string    `json:"first_name"`
	LastName      string    `json:"last_name"`
	Email         string    `json:"email"`
	IsActive      bool      `json:"is_active"`
	EmailVerified bool      `json:"email_verified" doc:"Whether the account proved it receives mail at its address."`
	Locale        string    `json:"locale" enum:"en,fr" doc:"The language of the account's mails."`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func viewUser(u *tenantry.User) UserView {
	locale := u.Locale
	if locale == "" {
		locale = "en"
	}
	return UserView{
		ID: u.ID, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email, IsActive: u.IsActive,
		EmailVerified: u.EmailVerified, Locale: locale, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}

// requires is secured for an operation on a tenant's resources that needs
// perm. The permission is named in the OpenAPI document (x-permission), so
// that clients and the route tests read it from there; the decision itself
// is the service's, through tenant.Service.Authorize.
func requires(perm permission.Permission, op huma.Operation) huma.Operation {
	op = secured(op)
	if op.Extensions == nil {
		op.Extensions = map[string]any{}
	}
	op.Extensions[permissionExtension] = string(perm)
	return op
}

// permissionExtension names an operation's permission in the OpenAPI
// document.
const permissionExtension = "x-permission"
