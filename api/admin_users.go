package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/tenant"
)

// AdminUserView is an account as platform administrators see it.
type AdminUserView struct {
	ID              string     `json:"id" format:"uuid"`
	Email           string     `json:"email"`
	FirstName       string     `json:"first_name"`
	LastName        string     `json:"last_name"`
	IsActive        bool       `json:"is_active"`
	IsPlatformAdmin bool       `json:"is_platform_admin"`
	EmailVerified   bool       `json:"email_verified"`
	Locale          string     `json:"locale" enum:"en,fr"`
	CreatedAt       time.Time  `json:"created_at"`
	Locked          bool       `json:"locked" doc:"Whether repeated failed sign-ins have locked the account out now."`
	LockedUntil     *time.Time `json:"locked_until" doc:"When the lockout ends; null when not locked out."`
}

type adminUserList struct {
	Users      []AdminUserView `json:"users"`
	Pagination pagination      `json:"pagination"`
}

type adminMembershipView struct {
	TenantID     string     `json:"tenant_id" format:"uuid"`
	TenantName   string     `json:"tenant_name"`
	TenantActive bool       `json:"tenant_active" doc:"False when the tenant is deactivated or deleted."`
	Role         string     `json:"role" doc:"admin, user, viewer or one of the tenant's own roles."`
	ExpiresAt    *time.Time `json:"expires_at" doc:"When the role ends; null for never."`
}

type adminUserDetail struct {
	AdminUserView
	Memberships []adminMembershipView `json:"memberships"`
	Sessions    int64                 `json:"sessions" doc:"Standing sessions: neither revoked nor expired."`
}

type adminUsersInput struct {
	Paging
	Search   text   `query:"search" maxLength:"255" doc:"Only accounts whose email, first or last name contains this, case-insensitively."`
	IsActive string `query:"is_active" enum:"true,false" doc:"Only active (true) or deactivated (false) accounts."`
}

type adminCreateUserInput struct {
	Body struct {
		Email           text   `json:"email" doc:"Lower-cased and trimmed; at most 255 characters." example:"grace@example.com"`
		FirstName       text   `json:"first_name" doc:"1 to 100 characters; trimmed." example:"Grace"`
		LastName        text   `json:"last_name" doc:"1 to 100 characters; trimmed." example:"Hopper"`
		Password        string `json:"password" doc:"8 to 128 characters with at least one letter and one digit."`
		IsPlatformAdmin bool   `json:"is_platform_admin,omitempty" doc:"Make the account a platform administrator."`
	}
}

// UserPath names one account.
type UserPath struct {
	UserID resourceID `path:"user_id" doc:"User id."`
}

func viewAdminUser(u *account.AdminUser) AdminUserView {
	v := viewUser(&u.User)
	return AdminUserView{ID: v.ID, Email: v.Email, FirstName: v.FirstName, LastName: v.LastName, IsActive: v.IsActive,
		IsPlatformAdmin: u.PlatformAdmin, EmailVerified: v.EmailVerified, Locale: v.Locale, CreatedAt: v.CreatedAt,
		Locked: !u.LockedUntil.IsZero(), LockedUntil: optionalTime(u.LockedUntil)}
}

func viewMemberships(list []tenant.Membership) []adminMembershipView {
	out := make([]adminMembershipView, len(list))
	for i, m := range list {
		out[i] = adminMembershipView{TenantID: m.TenantID, TenantName: m.TenantName, TenantActive: m.TenantActive,
			Role: string(m.Role), ExpiresAt: optionalTime(m.ExpiresAt)}
	}
	return out
}

// adminUser answers an account's detail, its memberships included.
func (s *Server) adminUser(ctx context.Context, message string, u *account.AdminUser) (*response[adminUserDetail], error) {
	list, err := s.svc.Tenants.MembershipsOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return ok(message, adminUserDetail{AdminUserView: viewAdminUser(u), Memberships: viewMemberships(list), Sessions: u.Sessions}), nil
}

func (s *Server) registerAdminUsers() {
	tags := []string{"Administration"}
	base := adminAPIPrefix + "/users"

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-list-users", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "Every account, newest first (platform administrators)",
		Description: "Searches the email, first and last name in any case (in the embedded shape, letters beyond ASCII " +
			"match in their own case only), filters on is_active, and pages by number. Each account says whether it is " +
			"locked out.",
		Errors: []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *adminUsersInput) (*response[adminUserList], error) {
		f := account.UserFilter{Search: string(in.Search), Page: in.Page, PerPage: in.PerPage}
		if in.IsActive != "" {
			active := in.IsActive == "true"
			f.Active = &active
		}
		list, total, err := s.svc.Accounts.ListUsers(ctx, f)
		if err != nil {
			return nil, err
		}
		out := make([]AdminUserView, len(list))
		for i := range list {
			out[i] = viewAdminUser(&list[i])
		}
		return ok("Users retrieved successfully", adminUserList{Users: out, Pagination: in.Paging.of(total)}), nil
	})

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-create-user", Method: http.MethodPost, Path: base, Tags: tags,
		Summary: "Create an active account (platform administrators)",
		Description: "Validated as a registration is; an address that has an account is a conflict (409). An ordinary " +
			"account's address is mailed a verification link, as at registration, and stays unverified until followed; " +
			"a platform administrator's counts as verified, as when the command line makes one.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusConflict},
	}), func(ctx context.Context, in *adminCreateUserInput) (*response[adminUserDetail], error) {
		b := in.Body
		u, err := s.svc.Accounts.CreateUser(ctx, account.Registration{Email: string(b.Email), FirstName: string(b.FirstName),
			LastName: string(b.LastName), Password: b.Password}, b.IsPlatformAdmin)
		if err != nil {
			return nil, err
		}
		res, err := s.adminUser(ctx, "User created", &account.AdminUser{User: *u})
		if err == nil {
			res.Status = http.StatusCreated
		}
		return res, err
	})

	huma.Register(s.api, platformOnly(huma.Operation{
		OperationID: "admin-get-user", Method: http.MethodGet, Path: base + "/{user_id}", Tags: tags,
		Summary:     "An account, its memberships and sessions (platform administrators)",
		Description: "Every membership, in tenants of any state, and how many sessions stand.",
		Errors:      []int{http.StatusBadRequest},
	}), func(ctx context.Context, in *UserPath) (*response[adminUserDetail], error) {
		u, err := s.svc.Accounts.User(ctx, in.UserID.String())
		if err != nil {
			return nil, err
		}
		return s.adminUser(ctx, "User retrieved successfully", u)
	})

	for _, a := range []struct {
		id, path, summary, description, message string
		do                                      func(context.Context, string) (*account.AdminUser, error)
	}{
		{"admin-deactivate-user", "/deactivate", "Deactivate an account (platform administrators)",
			"Signs out every session of the account at once and refuses its sign-ins until it is activated. You cannot " +
				"deactivate your own account (409). An account already deactivated is answered as it is.",
			"User deactivated", func(ctx context.Context, id string) (*account.AdminUser, error) {
				return s.svc.Accounts.SetUserActive(ctx, id, false)
			}},
		{"admin-activate-user", "/activate", "Activate an account again (platform administrators)",
			"Its owner may sign in again. An active account is answered as it is.",
			"User activated", func(ctx context.Context, id string) (*account.AdminUser, error) {
				return s.svc.Accounts.SetUserActive(ctx, id, true)
			}},
		{"admin-unlock-user", "/unlock", "Lift an account's sign-in lockout (platform administrators)",
			"Forgets its failed sign-ins, so that the right password is let in at once. An account not locked out is " +
				"answered as it is.",
			"User unlocked", s.svc.Accounts.Unlock},
	} {
		huma.Register(s.api, platformOnly(huma.Operation{
			OperationID: a.id, Method: http.MethodPost, Path: base + "/{user_id}" + a.path, Tags: tags,
			Summary: a.summary, Description: a.description,
			Errors: []int{http.StatusBadRequest, http.StatusConflict},
		}), func(ctx context.Context, in *UserPath) (*response[adminUserDetail], error) {
			u, err := a.do(ctx, in.UserID.String())
			if err != nil {
				return nil, err
			}
			return s.adminUser(ctx, a.message, u)
		})
	}
}
