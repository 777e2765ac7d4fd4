package tenant

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/token"
)

// InvitationTTL is how long an invitation works after it was sent.
const InvitationTTL = 7 * 24 * time.Hour

// AcceptInvitationPath is the path of the customer's front end that
// invitation links open.
const AcceptInvitationPath = "/invitations/accept"

// Invitation is an invitation to join a tenant.
type Invitation struct {
	ID         string
	TenantID   string
	Email      string
	Role       tenantry.Role
	InvitedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSentAt time.Time
}

var (
	errInvitationNotFound = tenantry.Errorf(tenantry.ENotFound, "Invitation not found")
	errInvalidInvitation  = tenantry.Errorf(tenantry.EInvalidToken, "Invalid or expired invitation")
)

// pendingInvitation is the condition of an invitation that can still be
// accepted, as of $now.
const pendingInvitation = `accepted_at IS NULL AND revoked_at IS NULL`

const invitationColumns = `CAST(id AS TEXT), CAST(tenant_id AS TEXT), email, role, CAST(invited_by AS TEXT), created_at, expires_at, last_sent_at`

func scanInvitation(row sqldb.Row) (*Invitation, error) {
	var inv Invitation
	if err := row.Scan(&inv.ID, &inv.TenantID, &inv.Email, &inv.Role, &inv.InvitedBy, &inv.CreatedAt, &inv.ExpiresAt, &inv.LastSentAt); err != nil {
		return nil, err
	}
	return &inv, nil
}

// validEmail checks an address and returns it trimmed and lower-cased.
func validEmail(errs tenantry.FieldErrors, value string) string {
	e := strings.ToLower(strings.TrimSpace(value))
	_, domain, _ := strings.Cut(e, "@")
	switch {
	case e == "":
		errs.Add("email", "Email is required")
	case utf8.RuneCountInString(e) > 255:
		errs.Add("email", "Email must not exceed 255 characters")
	case !mail.ValidAddress(e) || !strings.Contains(domain, "."):
		errs.Add("email", "Not a valid email address.")
	}
	return e
}

// Invite invites an address to join a tenant with a role, and mails it the
// link. It needs the right to add members, and the role may grant nothing
// the inviter's does not. An address that is already a member, or has a
// pending invitation, is a conflict.
func (s *Service) Invite(ctx context.Context, tenantID, emailAddr string, role tenantry.Role) (*Invitation, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.MembersAdd)
	if err != nil {
		return nil, err
	}
	errs := tenantry.FieldErrors{}
	e := validEmail(errs, emailAddr)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	// The role may grant nothing the inviter's does not.
	if _, err := grantable(ctx, s.db, mt, Assignment{Role: role}); err != nil {
		return nil, err
	}
	p, _ := principal(ctx)
	now := sqldb.Now()
	inv := &Invitation{ID: uuid.NewString(), TenantID: tenantID, Email: e, Role: role, InvitedBy: p.UserID,
		CreatedAt: now, ExpiresAt: now.Add(InvitationTTL), LastSentAt: now}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		} else if !ok {
			return errTenantNotFound
		}
		var members int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.tenant_id = $1 AND u.email = $2`, tenantID, e).Scan(&members); err != nil {
			return err
		} else if members > 0 {
			return tenantry.Errorf(tenantry.EConflict, "This address is already a member of the tenant")
		}
		if limits, err := s.quotas.Limits(ctx, tx, tenantID); err != nil {
			return err
		} else if limits.Members != nil {
			if n, err := countMembers(ctx, tx, tenantID); err != nil {
				return err
			} else if n >= *limits.Members {
				return quota.Exceeded(quota.Members, *limits.Members, n)
			}
		}
		// An expired invitation gives way to the new one.
		if _, err := tx.Exec(ctx, `UPDATE invitations SET revoked_at = $3 WHERE tenant_id = $1 AND email = $2 AND `+pendingInvitation+`
			AND expires_at <= $3`, tenantID, e, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO invitations (id, tenant_id, email, role, invited_by, created_at, expires_at, last_sent_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $6)`, inv.ID, tenantID, e, string(role), p.UserID, now, inv.ExpiresAt)
		if errors.Is(err, sqldb.ErrUniqueViolation) {
			return tenantry.Errorf(tenantry.EConflict, "An invitation to this address is pending; resend it instead")
		} else if err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventInvitationCreated, tenantID, p.UserID, invitationEvent(inv)); err != nil {
			return err
		}
		return s.mailInvitation(ctx, tx, inv, mt.Name)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetTarget(ctx, "invitation", inv.ID)
	audit.Annotate(ctx, "after", map[string]any{"email": e, "role": role})
	return inv, nil
}

func invitationEvent(inv *Invitation) map[string]any {
	return map[string]any{"invitation_id": inv.ID, "tenant_id": inv.TenantID, "email": inv.Email, "role": inv.Role,
		"invited_by": inv.InvitedBy, "expires_at": inv.ExpiresAt}
}

// mailInvitation queues the mail of an invitation in tx, in the language
// of the account that has the address, or else the inviter's.
func (s *Service) mailInvitation(ctx context.Context, tx sqldb.Tx, inv *Invitation, tenantName string) error {
	if s.opts.Mailer == nil {
		return nil
	}
	var inviter, locale string
	if err := tx.QueryRow(ctx, `SELECT first_name || ' ' || last_name, locale FROM users WHERE id = $1`, inv.InvitedBy).
		Scan(&inviter, &locale); err != nil {
		return err
	}
	var invitee string
	err := tx.QueryRow(ctx, `SELECT locale FROM users WHERE email = $1`, inv.Email).Scan(&invitee)
	if err == nil {
		locale = invitee
	} else if !errors.Is(err, sqldb.ErrNoRows) {
		return err
	}
	return s.opts.Mailer.Enqueue(ctx, tx, &mailer.Delivery{Kind: mail.KindInvitation, To: inv.Email, TenantID: inv.TenantID, Locale: locale,
		Params: mailer.Params{"invitation_id": inv.ID, "tenant_name": tenantName, "inviter_name": inviter, "role": string(inv.Role)}})
}

// prepareInvitation mints the token of an invitation's link when its mail
// is sent; the new token replaces any earlier one, so only the last link
// mailed works. An invitation no longer pending is not mailed.
func (s *Service) prepareInvitation(ctx context.Context, d *mailer.Delivery, data *mail.Data) error {
	raw, hash := token.NewMailed()
	now := sqldb.Now()
	n, err := s.db.Exec(ctx, `UPDATE invitations SET token_hash = $2 WHERE id = $1 AND `+pendingInvitation+` AND expires_at > $3`,
		d.Params["invitation_id"], hash, now)
	if err != nil {
		return err
	} else if n == 0 {
		return mailer.ErrCancel
	}
	data.TenantName, data.InviterName, data.Role = d.Params["tenant_name"], d.Params["inviter_name"], d.Params["role"]
	data.Link = data.AppURL + AcceptInvitationPath + "?token=" + raw
	return nil
}

// ListInvitations returns a page of a tenant's pending invitations, newest
// first, expired ones included (they can be resent), and how many there
// are. Admins only.
func (s *Service) ListInvitations(ctx context.Context, tenantID string, page, perPage int) ([]Invitation, int64, error) {
	if _, err := s.Authorize(ctx, tenantID, permission.MembersAdd); err != nil {
		return nil, 0, err
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM invitations WHERE tenant_id = $1 AND `+pendingInvitation, tenantID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.Query(ctx, `SELECT `+invitationColumns+` FROM invitations WHERE tenant_id = $1 AND `+pendingInvitation+`
		ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`, tenantID, perPage, (page-1)*perPage)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []Invitation{}
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *inv)
	}
	return out, total, rows.Err()
}

// lockedInvitation locks the tenant and reads one of its pending
// invitations.
func (s *Service) lockedInvitation(ctx context.Context, tx sqldb.Tx, tenantID, id string) (*Invitation, error) {
	if ok, err := lockTenant(ctx, tx, tenantID); err != nil {
		return nil, err
	} else if !ok {
		return nil, errTenantNotFound
	}
	inv, err := scanInvitation(tx.QueryRow(ctx, `SELECT `+invitationColumns+` FROM invitations
		WHERE id = $1 AND tenant_id = $2 AND `+pendingInvitation, id, tenantID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errInvitationNotFound
	}
	return inv, err
}

// RevokeInvitation withdraws a pending invitation: its link stops working.
// Admins only.
func (s *Service) RevokeInvitation(ctx context.Context, tenantID, id string) error {
	if _, err := s.Authorize(ctx, tenantID, permission.MembersAdd); err != nil {
		return err
	}
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		inv, err := s.lockedInvitation(ctx, tx, tenantID, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE invitations SET revoked_at = $2, token_hash = NULL WHERE id = $1`, id, sqldb.Now()); err != nil {
			return err
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventInvitationRevoked, tenantID, principalID(ctx), invitationEvent(inv))
	})
	if err != nil {
		return err
	}
	s.streams.Committed()
	audit.SetTarget(ctx, "invitation", id)
	return nil
}

// ResendInvitation mails a pending invitation again, expired or not: its
// new link works for another InvitationTTL, and the earlier links stop
// working once it is sent. Admins only.
func (s *Service) ResendInvitation(ctx context.Context, tenantID, id string) (*Invitation, error) {
	mt, err := s.Authorize(ctx, tenantID, permission.MembersAdd)
	if err != nil {
		return nil, err
	}
	var inv *Invitation
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if inv, err = s.lockedInvitation(ctx, tx, tenantID, id); err != nil {
			return err
		}
		now := sqldb.Now()
		inv.LastSentAt, inv.ExpiresAt = now, now.Add(InvitationTTL)
		if _, err := tx.Exec(ctx, `UPDATE invitations SET last_sent_at = $2, expires_at = $3 WHERE id = $1`, id, now, inv.ExpiresAt); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventInvitationResent, tenantID, principalID(ctx), invitationEvent(inv)); err != nil {
			return err
		}
		return s.mailInvitation(ctx, tx, inv, mt.Name)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetTarget(ctx, "invitation", id)
	return inv, nil
}

// NewAccount creates the account of someone accepting an invitation, with
// the invitation's address, in tx. The account package provides it, having
// checked the names and hashed the password beforehand.
type NewAccount func(ctx context.Context, tx sqldb.Tx, email string) (*tenantry.User, error)

// Accepted is an accepted invitation.
type Accepted struct {
	Invitation
	TenantName string
	// UserID is the member's account; Created says whether accepting
	// created it.
	UserID  string
	Created bool
}

// AcceptInvitation makes the holder of an invitation's token a member of
// its tenant. Signed in (create nil), the caller's verified address must
// be the invitation's; otherwise create makes the account, whose address
// the token proves. Any token that is not good (unknown, used, revoked,
// expired, or of a tenant gone) is refused alike.
func (s *Service) AcceptInvitation(ctx context.Context, raw string, create NewAccount) (*Accepted, error) {
	if !token.ValidMailed(raw) {
		return nil, errInvalidInvitation
	}
	var p tenantry.Principal
	if create == nil {
		var err error
		if p, err = principal(ctx); err != nil {
			return nil, err
		}
	}
	now := sqldb.Now()
	var res Accepted
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		inv, err := scanInvitation(tx.QueryRow(ctx, `SELECT `+invitationColumns+` FROM invitations
			WHERE token_hash = $1 AND `+pendingInvitation+` AND expires_at > $2`, token.HashMailed(raw), now))
		if errors.Is(err, sqldb.ErrNoRows) {
			return errInvalidInvitation
		} else if err != nil {
			return err
		}
		if ok, err := lockTenant(ctx, tx, inv.TenantID); err != nil {
			return err
		} else if !ok {
			return errInvalidInvitation
		}
		res.Invitation = *inv
		if err := tx.QueryRow(ctx, `SELECT name FROM tenants WHERE id = $1`, inv.TenantID).Scan(&res.TenantName); err != nil {
			return err
		}
		if create != nil {
			u, err := create(ctx, tx, inv.Email)
			if tenantry.ErrorCode(err) == tenantry.EConflict {
				return tenantry.Errorf(tenantry.EConflict, "An account has this address: sign in, then accept the invitation")
			} else if err != nil {
				return err
			}
			res.UserID, res.Created = u.ID, true
		} else {
			var addr string
			var verified bool
			if err := tx.QueryRow(ctx, `SELECT email, email_verified_at IS NOT NULL FROM users WHERE id = $1`, p.UserID).
				Scan(&addr, &verified); err != nil {
				return err
			}
			if addr != inv.Email {
				return tenantry.Errorf(tenantry.EForbidden, "This invitation was sent to another address")
			}
			if !verified {
				return errNotVerified
			}
			res.UserID = p.UserID
		}
		if err := s.checkMembersQuota(ctx, tx, inv.TenantID, res.UserID); err != nil {
			return err
		}
		m := &tenantry.Membership{TenantID: inv.TenantID, UserID: res.UserID, Role: inv.Role, JoinedAt: now}
		if err := insertMembership(ctx, tx, m); errors.Is(err, sqldb.ErrUniqueViolation) {
			return tenantry.Errorf(tenantry.EConflict, "You are already a member of this tenant")
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE invitations SET accepted_at = $2, accepted_by = $3, token_hash = NULL WHERE id = $1`,
			inv.ID, now, res.UserID); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventInvitationAccepted, inv.TenantID, res.UserID,
			map[string]any{"invitation_id": inv.ID, "tenant_id": inv.TenantID, "user_id": res.UserID, "role": inv.Role, "created_account": res.Created}); err != nil {
			return err
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventMemberAdded, inv.TenantID, res.UserID,
			map[string]any{"tenant_id": inv.TenantID, "user_id": res.UserID, "role": inv.Role, "invitation_id": inv.ID})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetTenant(ctx, res.TenantID)
	audit.SetActor(ctx, res.UserID)
	audit.SetTarget(ctx, "invitation", res.ID)
	audit.Annotate(ctx, "role", res.Role)
	audit.Annotate(ctx, "created_account", res.Created)
	return &res, nil
}
