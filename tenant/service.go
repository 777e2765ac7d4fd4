// Package tenant manages tenants and their members: provisioning a tenant
// with its own database, listing, renaming and deactivating tenants, adding
// and removing members and changing their roles, and deciding whether the
// caller may act on a tenant at all.
package tenant

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/sqldb"
)

// Service implements the tenant use cases over the control database.
type Service struct {
	db          sqldb.DB
	provisioner *Provisioner
	streams     *outbox.Streams
	quotas      *quota.Store
	logger      *slog.Logger
	opts        Options
}

// Options are the tenant rules that concern mail.
type Options struct {
	// Mailer, when set, sends invitations.
	Mailer *mailer.Mailer
	// RequireEmailVerification keeps accounts that have not verified
	// their address out of every tenant (403 EMAIL_NOT_VERIFIED).
	RequireEmailVerification bool
}

// NewService returns a Service recording its events through streams and
// holding tenants to the limits quotas gives.
func NewService(db sqldb.DB, provisioner *Provisioner, streams *outbox.Streams, quotas *quota.Store, logger *slog.Logger, opts Options) *Service {
	s := &Service{db: db, provisioner: provisioner, streams: streams, quotas: quotas, logger: logger, opts: opts}
	if opts.Mailer != nil {
		opts.Mailer.Handle(mail.KindInvitation, s.prepareInvitation)
	}
	return s
}

// errNotVerified refuses an account that has not verified its address,
// when verification is required.
var errNotVerified = tenantry.Errorf(tenantry.EEmailNotVerified, "Verify your email address first: follow the link mailed to you, or ask for another at /api/auth/resend-verification")

// verified refuses the caller when verification is required and the
// caller's address is not verified.
func (s *Service) verified(ctx context.Context, p tenantry.Principal) error {
	if !s.opts.RequireEmailVerification {
		return nil
	}
	if p.User != nil {
		if !p.User.EmailVerified {
			return errNotVerified
		}
		return nil
	}
	var ok bool
	if err := s.db.QueryRow(ctx, `SELECT email_verified_at IS NOT NULL FROM users WHERE id = $1`, p.UserID).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return errNotVerified
	}
	return nil
}

// Limits returns the limits a tenant works under. The caller has
// authorized the request already.
func (s *Service) Limits(ctx context.Context, tenantID string) (quota.Limits, error) {
	return s.quotas.Limits(ctx, s.db, tenantID)
}

// MemberCount returns how many members a tenant has, what its members
// quota counts. The caller has authorized the request already.
func (s *Service) MemberCount(ctx context.Context, tenantID string) (int64, error) {
	return countMembers(ctx, s.db, tenantID)
}

const maxTenantNameLen = 255

var (
	errTenantNotFound = tenantry.Errorf(tenantry.ENotFound, "Tenant not found")
	errNotMember      = tenantry.Errorf(tenantry.ENotFound, "User is not a member of this tenant")
)

func principal(ctx context.Context) (tenantry.Principal, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return p, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	return p, nil
}

// Authorize returns the tenant if the caller is a member of it whose role
// grants perm, on their own resources at least (the caller checks
// ownership where the scope matters, with MemberTenant.Permissions). It is
// where every decision about a tenant's resources is made. A tenant the
// caller does not belong to (or no longer: the role expired), or that is
// not active, is not found: its existence is not revealed. A member whose
// role does not grant perm is forbidden.
func (s *Service) Authorize(ctx context.Context, tenantID string, perm permission.Permission) (*MemberTenant, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.verified(ctx, p); err != nil {
		return nil, err
	}
	mt, err := findAccess(ctx, s.db, tenantID, p.UserID, sqldb.Now())
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errTenantNotFound
	} else if err != nil {
		return nil, err
	}
	if mt.AuthMethod == tenantry.AuthSSO && p.SSOTenantID != tenantID {
		return nil, SSORequired(tenantID)
	}
	if !mt.Permissions.Allows(perm) {
		return nil, tenantry.Errorf(tenantry.EForbidden, "Your role in this tenant does not allow this operation (it needs %s)", perm)
	}
	return mt, nil
}

// SSORequired is the refusal of a session that was not opened through the
// single sign-on of a tenant that enforces it. Its details name where to
// sign in.
func SSORequired(tenantID string) error {
	return &tenantry.Error{
		Code:    tenantry.ESSORequired,
		Message: "This tenant requires single sign-on: sign in through its identity provider",
		Details: map[string]any{"tenant_id": tenantID, "login_url": "/api/auth/sso/login/" + tenantID},
	}
}

// Active returns an active tenant without checking the caller's membership,
// for requests authorized some other way (a signed download link).
func (s *Service) Active(ctx context.Context, tenantID string) (*tenantry.Tenant, error) {
	t, err := scanTenant(s.db.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants
		WHERE id = $1 AND is_active AND provisioned_at IS NOT NULL`, tenantID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errTenantNotFound
	}
	return t, err
}

func validName(errs tenantry.FieldErrors, value string) string {
	trimmed := strings.TrimSpace(value)
	switch n := utf8.RuneCountInString(value); {
	case n < 1 || n > maxTenantNameLen:
		errs.Add("name", "Length must be between 1 and 255.")
	case trimmed == "":
		errs.Add("name", "Tenant name cannot be empty or only whitespace")
	}
	return trimmed
}

// Create provisions a tenant with its own database and makes the caller its
// admin, all or nothing.
func (s *Service) Create(ctx context.Context, name string) (*MemberTenant, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.verified(ctx, p); err != nil {
		return nil, err
	}
	errs := tenantry.FieldErrors{}
	name = validName(errs, name)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	var membership tenantry.Membership
	t, err := s.provisioner.Provision(ctx, name, p.UserID, func(ctx context.Context, tx sqldb.Tx, t *tenantry.Tenant) error {
		membership = tenantry.Membership{TenantID: t.ID, UserID: p.UserID, Role: tenantry.RoleAdmin, JoinedAt: sqldb.Now()}
		if err := insertMembership(ctx, tx, &membership); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventTenantCreated, t.ID, p.UserID, map[string]any{
			"tenant_id": t.ID, "tenant_name": t.Name, "database_name": t.DatabaseName, "creator_id": p.UserID,
		}); err != nil {
			return err
		}
		return s.memberEvent(ctx, tx, tenantry.EventMemberAdded, t.ID, p.UserID, map[string]any{"role": tenantry.RoleAdmin})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetTenant(ctx, t.ID)
	audit.SetTarget(ctx, "tenant", t.ID)
	audit.Annotate(ctx, "after", map[string]any{"name": t.Name, "database_name": t.DatabaseName})
	admin, _ := permission.BuiltIn(permission.Admin)
	return &MemberTenant{Tenant: *t, Role: tenantry.RoleAdmin, JoinedAt: membership.JoinedAt, Permissions: admin}, nil
}

// ListMine returns the caller's active tenants with the caller's role in
// each, most recently joined first.
func (s *Service) ListMine(ctx context.Context) ([]MemberTenant, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	return listMemberTenants(ctx, s.db, p.UserID)
}

// ListFor returns a user's active tenants; login uses it before the new
// session's principal exists.
func (s *Service) ListFor(ctx context.Context, userID string) ([]MemberTenant, error) {
	return listMemberTenants(ctx, s.db, userID)
}

// Detail is a tenant with its active members.
type Detail struct {
	MemberTenant
	Members []Member
}

// Get returns a tenant the caller belongs to, with its members.
func (s *Service) Get(ctx context.Context, tenantID string) (*Detail, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.TenantRead)
	if err != nil {
		return nil, err
	}
	if !mt.Permissions.Allows(permission.MembersRead) {
		return &Detail{MemberTenant: *mt, Members: []Member{}}, nil
	}
	members, err := listMembers(ctx, s.db, tenantID)
	if err != nil {
		return nil, err
	}
	return &Detail{MemberTenant: *mt, Members: members}, nil
}

// Update is a change to a tenant; nil leaves a field alone.
type Update struct {
	Name *string
	// IsActive false deactivates the tenant: like Delete it then answers
	// not found, but it is kept for good, with no retention period.
	IsActive *bool
}

// Update renames or deactivates a tenant.
func (s *Service) Update(ctx context.Context, tenantID string, in Update) (*tenantry.Tenant, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.TenantUpdate)
	if err != nil {
		return nil, err
	}
	if in.Name == nil && in.IsActive == nil {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Request body is required")
	}
	errs := tenantry.FieldErrors{}
	var name string
	if in.Name != nil {
		name = validName(errs, *in.Name)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	now := sqldb.Now()
	t := mt.Tenant
	before, after := map[string]any{}, map[string]any{}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if in.Name != nil {
			if err := renameTenant(ctx, tx, tenantID, name, now); err != nil {
				return err
			}
			if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventTenantUpdated, tenantID, principalID(ctx), map[string]any{
				"tenant_id": tenantID, "before": map[string]any{"name": t.Name}, "after": map[string]any{"name": name},
			}); err != nil {
				return err
			}
			before["name"], after["name"] = t.Name, name
			t.Name, t.UpdatedAt = name, now
		}
		if in.IsActive != nil && !*in.IsActive {
			if err := s.deactivate(ctx, tx, &t, now); err != nil {
				return err
			}
			before["is_active"], after["is_active"] = true, false
			t.IsActive, t.UpdatedAt = false, now
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.Annotate(ctx, "before", before)
	audit.Annotate(ctx, "after", after)
	return &t, nil
}

// Delete deletes a tenant: it answers not found at once, and its data (its
// row, members, database and blobs) is kept for the retention period, during
// which the tenant can be restored (see Lifecycle), then purged. Admins
// only.
func (s *Service) Delete(ctx context.Context, tenantID string) error {
	mt, err := s.Authorize(ctx, tenantID, permission.TenantDelete)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		now := sqldb.Now()
		ok, err := deleteTenant(ctx, tx, tenantID, now)
		if err != nil {
			return err
		} else if !ok {
			return errTenantNotFound
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventTenantDeleted, tenantID, principalID(ctx), map[string]any{
			"tenant_id": tenantID, "database_name": mt.DatabaseName, "hard_delete": false, "deleted_at": now,
		})
	})
	if err == nil {
		s.streams.Committed()
	}
	return err
}

// deactivate deactivates a tenant without deleting it: it answers not
// found, and its data is kept with no retention period.
func (s *Service) deactivate(ctx context.Context, tx sqldb.Tx, t *tenantry.Tenant, now time.Time) error {
	ok, err := deactivateTenant(ctx, tx, t.ID, now)
	if err != nil {
		return err
	} else if !ok {
		return errTenantNotFound
	}
	return s.streams.EmitPlatform(ctx, tx, tenantry.EventTenantDeleted, t.ID, principalID(ctx), map[string]any{
		"tenant_id": t.ID, "database_name": t.DatabaseName, "hard_delete": false,
	})
}

// memberEvent records a membership change of the tenant in tx.
func (s *Service) memberEvent(ctx context.Context, tx sqldb.Tx, eventType, tenantID, userID string, data map[string]any) error {
	data["tenant_id"], data["user_id"] = tenantID, userID
	return s.streams.EmitPlatform(ctx, tx, eventType, tenantID, principalID(ctx), data)
}

func principalID(ctx context.Context) string {
	p, _ := tenantry.PrincipalFromContext(ctx)
	return p.UserID
}

// MemberSync is what SyncMember did.
type MemberSync struct {
	// Added is a new membership; Changed a role changed; Before the role
	// held until then.
	Added, Changed bool
	Before         tenantry.Role
	Role           tenantry.Role
	// KeptLastAdmin is set when the role was to be lowered but the member
	// is the tenant's last admin, who keeps the role.
	KeptLastAdmin bool
}

// SyncMember gives a user a role in a tenant inside tx, for a sign-in
// through the tenant's identity provider, which vouches for the user and
// maps its groups to the role: a missing membership is created when add is
// set (within the members quota), a different role is replaced, except that
// the last admin is never demoted. Each change is recorded as an event.
func (s *Service) SyncMember(ctx context.Context, tx sqldb.Tx, tenantID, userID string, role tenantry.Role, add bool) (*MemberSync, error) {
	if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errTenantNotFound
	}
	m, err := findMembership(ctx, tx, tenantID, userID)
	switch {
	case errors.Is(err, sqldb.ErrNoRows):
		if !add {
			return nil, errNotMember
		}
		if err := s.checkMembersQuota(ctx, tx, tenantID, userID); err != nil {
			return nil, err
		}
		m = &tenantry.Membership{TenantID: tenantID, UserID: userID, Role: role, JoinedAt: sqldb.Now()}
		if err := insertMembership(ctx, tx, m); err != nil {
			return nil, err
		}
		return &MemberSync{Added: true, Role: role}, s.memberEvent(ctx, tx, tenantry.EventMemberAdded, tenantID, userID,
			map[string]any{"role": role, "source": "sso"})
	case err != nil:
		return nil, err
	}
	out := &MemberSync{Before: m.Role, Role: m.Role}
	if m.Role == role {
		return out, nil
	}
	set, err := roleSet(ctx, tx, tenantID, string(role))
	if err != nil {
		return nil, err
	}
	if isManager(m.Permissions) && !isManager(set) {
		if n, err := managers(ctx, tx, tenantID, userID); err != nil {
			return nil, err
		} else if n == 0 {
			out.KeptLastAdmin = true
			return out, nil
		}
	}
	if err := updateRole(ctx, tx, tenantID, userID, role, m.ExpiresAt); err != nil {
		return nil, err
	}
	out.Changed, out.Role = true, role
	return out, s.memberEvent(ctx, tx, tenantry.EventMemberRoleChanged, tenantID, userID,
		map[string]any{"from": m.Role, "to": role, "source": "sso_group_mapping"})
}
