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

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/outbox"
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

// Authorize returns the tenant if the caller is a member of it with at least
// role min. A tenant the caller does not belong to, or that is not active,
// is not found: its existence is not revealed. A member whose role is too
// low is forbidden.
func (s *Service) Authorize(ctx context.Context, tenantID string, min tenantry.Role) (*MemberTenant, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.verified(ctx, p); err != nil {
		return nil, err
	}
	mt, err := findAccess(ctx, s.db, tenantID, p.UserID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errTenantNotFound
	} else if err != nil {
		return nil, err
	}
	if !mt.Role.AtLeast(min) {
		if min == tenantry.RoleAdmin {
			return nil, tenantry.Errorf(tenantry.EForbidden, "Admin role required for this operation")
		}
		return nil, tenantry.Errorf(tenantry.EForbidden, "Your role in this tenant does not allow this operation")
	}
	return mt, nil
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
	return &MemberTenant{Tenant: *t, Role: tenantry.RoleAdmin, JoinedAt: membership.JoinedAt}, nil
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
	mt, err := s.Authorize(ctx, tenantID, tenantry.RoleViewer)
	if err != nil {
		return nil, err
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

// Update renames or deactivates a tenant. Admins only.
func (s *Service) Update(ctx context.Context, tenantID string, in Update) (*tenantry.Tenant, error) {
	mt, err := s.Authorize(ctx, tenantID, tenantry.RoleAdmin)
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
	mt, err := s.Authorize(ctx, tenantID, tenantry.RoleAdmin)
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

func validRole(errs tenantry.FieldErrors, role tenantry.Role) {
	if !role.Valid() {
		errs.Add("role", "Must be one of: admin, user, viewer.")
	}
}

// AddMember adds an existing, active user to a tenant. Admins only.
func (s *Service) AddMember(ctx context.Context, tenantID, userID string, role tenantry.Role) (*tenantry.Membership, error) {
	return s.AddMemberBy(ctx, tenantID, userID, "", role)
}

// AddMemberBy adds an existing, active user to a tenant, named by id or by
// email (exactly one of them). Admins only.
func (s *Service) AddMemberBy(ctx context.Context, tenantID, userID, emailAddr string, role tenantry.Role) (*tenantry.Membership, error) {
	if _, err := s.Authorize(ctx, tenantID, tenantry.RoleAdmin); err != nil {
		return nil, err
	}
	errs := tenantry.FieldErrors{}
	switch {
	case userID != "" && emailAddr != "":
		errs.Add("user_id", "Give user_id or email, not both.")
	case emailAddr != "":
		e := validEmail(errs, emailAddr)
		if err := errs.Err(); err != nil {
			return nil, err
		}
		err := s.db.QueryRow(ctx, `SELECT CAST(id AS TEXT) FROM users WHERE email = $1 AND is_active`, e).Scan(&userID)
		if errors.Is(err, sqldb.ErrNoRows) {
			return nil, tenantry.Errorf(tenantry.ENotFound, "No active account has this address; invite it instead")
		} else if err != nil {
			return nil, err
		}
	default:
		userID = strings.ToLower(strings.TrimSpace(userID))
		if _, err := uuid.Parse(userID); err != nil || len(userID) != 36 {
			errs.Add("user_id", "Not a valid UUID.")
		}
	}
	validRole(errs, role)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	m := &tenantry.Membership{TenantID: tenantID, UserID: userID, Role: role, JoinedAt: sqldb.Now()}
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		} else if !ok {
			return errTenantNotFound
		}
		if ok, err := activeUser(ctx, tx, userID); err != nil {
			return err
		} else if !ok {
			return tenantry.Errorf(tenantry.ENotFound, "User not found")
		}
		// The tenant's row lock, taken above, makes this count and the
		// insert below one step for concurrent additions.
		if err := s.checkMembersQuota(ctx, tx, tenantID, userID); err != nil {
			return err
		}
		err := insertMembership(ctx, tx, m)
		if errors.Is(err, sqldb.ErrUniqueViolation) {
			return tenantry.Errorf(tenantry.EConflict, "User is already a member of this tenant")
		} else if err != nil {
			return err
		}
		return s.memberEvent(ctx, tx, tenantry.EventMemberAdded, tenantID, userID, map[string]any{"role": role})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetTarget(ctx, "user", userID)
	audit.Annotate(ctx, "after", map[string]any{"role": role})
	return m, nil
}

// checkMembersQuota refuses a new member the tenant has no room for. An
// existing member is left to the insert, which answers that it is one.
func (s *Service) checkMembersQuota(ctx context.Context, tx sqldb.Tx, tenantID, userID string) error {
	limits, err := s.quotas.Limits(ctx, tx, tenantID)
	if err != nil || limits.Members == nil {
		return err
	}
	n, err := countMembers(ctx, tx, tenantID)
	if err != nil || n < *limits.Members {
		return err
	}
	if _, err := findMembership(ctx, tx, tenantID, userID); err == nil {
		return tenantry.Errorf(tenantry.EConflict, "User is already a member of this tenant")
	} else if !errors.Is(err, sqldb.ErrNoRows) {
		return err
	}
	return quota.Exceeded(quota.Members, *limits.Members, n)
}

// RemoveMember removes a user from a tenant; the last admin cannot be
// removed. Admins only.
func (s *Service) RemoveMember(ctx context.Context, tenantID, userID string) error {
	if _, err := s.Authorize(ctx, tenantID, tenantry.RoleAdmin); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		m, err := s.lockedMembership(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		if m.Role == tenantry.RoleAdmin {
			if err := ensureAnotherAdmin(ctx, tx, tenantID, "Cannot remove the last admin from the tenant"); err != nil {
				return err
			}
		}
		if err := deleteMembership(ctx, tx, tenantID, userID); err != nil {
			return err
		}
		audit.Annotate(ctx, "before", map[string]any{"role": m.Role})
		return s.memberEvent(ctx, tx, tenantry.EventMemberRemoved, tenantID, userID, map[string]any{"role": m.Role})
	})
	if err == nil {
		s.streams.Committed()
	}
	return err
}

// ChangeRole sets a member's role; the last admin cannot be demoted. Admins
// only.
func (s *Service) ChangeRole(ctx context.Context, tenantID, userID string, role tenantry.Role) (*tenantry.Membership, error) {
	if _, err := s.Authorize(ctx, tenantID, tenantry.RoleAdmin); err != nil {
		return nil, err
	}
	errs := tenantry.FieldErrors{}
	validRole(errs, role)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	var m *tenantry.Membership
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		var err error
		m, err = s.lockedMembership(ctx, tx, tenantID, userID)
		if err != nil {
			return err
		}
		if m.Role == tenantry.RoleAdmin && role != tenantry.RoleAdmin {
			if err := ensureAnotherAdmin(ctx, tx, tenantID, "Cannot demote the last admin of the tenant"); err != nil {
				return err
			}
		}
		if err := updateRole(ctx, tx, tenantID, userID, role); err != nil {
			return err
		}
		if err := s.memberEvent(ctx, tx, tenantry.EventMemberRoleChanged, tenantID, userID, map[string]any{"from": m.Role, "to": role}); err != nil {
			return err
		}
		audit.Annotate(ctx, "before", map[string]any{"role": m.Role})
		audit.Annotate(ctx, "after", map[string]any{"role": role})
		m.Role = role
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return m, nil
}

// lockedMembership locks the tenant, then reads the membership: after the
// lock, concurrent changes to this tenant's members have committed and are
// visible.
func (s *Service) lockedMembership(ctx context.Context, tx sqldb.Tx, tenantID, userID string) (*tenantry.Membership, error) {
	if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errTenantNotFound
	}
	m, err := findMembership(ctx, tx, tenantID, userID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errNotMember
	}
	return m, err
}

func ensureAnotherAdmin(ctx context.Context, tx sqldb.Tx, tenantID, message string) error {
	n, err := countAdmins(ctx, tx, tenantID)
	if err != nil {
		return err
	}
	if n <= 1 {
		return tenantry.Errorf(tenantry.EConflict, "%s", message)
	}
	return nil
}
