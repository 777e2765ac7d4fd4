package sso

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/sqldb"
)

func tokenAAD(identityID, column string) keyring.AAD {
	return keyring.AAD{"table", tableIdentities, "column", column, "row", identityID}
}

// userRow is what a sign-in needs to know of an account.
type userRow struct {
	id      string
	email   string
	active  bool
	hasPass bool
	first   string
	last    string
}

func findUserByEmail(ctx context.Context, q sqldb.Querier, email string) (*userRow, error) {
	var u userRow
	err := q.QueryRow(ctx, `SELECT id, email, is_active, password_hash IS NOT NULL, first_name, last_name FROM users WHERE email = $1`, email).
		Scan(&u.id, &u.email, &u.active, &u.hasPass, &u.first, &u.last)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func findUserByID(ctx context.Context, q sqldb.Querier, id string) (*userRow, error) {
	var u userRow
	err := q.QueryRow(ctx, `SELECT id, email, is_active, password_hash IS NOT NULL, first_name, last_name FROM users WHERE id = $1`, id).
		Scan(&u.id, &u.email, &u.active, &u.hasPass, &u.first, &u.last)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func isMember(ctx context.Context, q sqldb.Querier, tenantID, userID string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID).Scan(&n)
	return n > 0, err
}

// names returns the first and last names the claims give, cut to what an
// account holds.
func names(cl *Claims) (string, string) {
	first, last := strings.TrimSpace(cl.GivenName), strings.TrimSpace(cl.FamilyName)
	if first == "" && last == "" && cl.Name != "" {
		first, last, _ = strings.Cut(strings.TrimSpace(cl.Name), " ")
	}
	if first == "" {
		first, _, _ = strings.Cut(cl.Email, "@")
	}
	clean := func(s string) string {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, strings.TrimSpace(s))
		if utf8.RuneCountInString(s) > 100 {
			s = string([]rune(s)[:100])
		}
		return s
	}
	first, last = clean(first), clean(last)
	if first == "" {
		first = "-"
	}
	if last == "" {
		last = "-"
	}
	return first, last
}

// signIn finds, links or provisions the account a verified sign-in is
// for, applies the tenant's rules and role mapping, and stores the
// provider's tokens sealed.
func (s *Service) signIn(ctx context.Context, c *Config, f *flowState, cl *Claims, pt *providerTokens) (*Completed, error) {
	a := c.AutoProvisioning
	if cl.GroupsOverage {
		groups, err := s.graphGroups(ctx, pt.access)
		if err != nil {
			s.logger.WarnContext(ctx, "resolving Entra group overage", "tenant_id", c.TenantID, "problem", err.Error())
			return nil, s.refuse(ctx, tenantry.ESSOGroupsUnresolved,
				"The directory reported too many groups to list in the token, and Microsoft Graph could not list them", ReasonGroupsUnresolved, f)
		}
		cl.Groups = groups
		audit.Annotate(ctx, "groups_overage_resolved", len(groups))
	}
	if !a.domainAllowed(cl.Email) {
		return nil, s.refuse(ctx, tenantry.ESSODomainNotAllowed, "Email domain not allowed for SSO", ReasonDomainNotAllowed, f)
	}
	if !a.groupAllowed(cl.Groups) {
		return nil, s.refuse(ctx, tenantry.ESSOGroupNotAllowed, "None of your groups may sign in to this tenant", ReasonGroupNotAllowed, f)
	}
	ident, err := findIdentity(ctx, s.db, c.TenantID, cl.Issuer, cl.Subject)
	if errors.Is(err, sqldb.ErrNoRows) {
		ident = nil
	} else if err != nil {
		return nil, err
	}

	var u *userRow
	provisioned, linked := false, false
	switch {
	case ident != nil:
		if f.linkUserID != "" && f.linkUserID != ident.UserID {
			return nil, s.refuse(ctx, tenantry.EConflict, "This identity is already linked to another account", ReasonLinkRequired, f)
		}
		if u, err = findUserByID(ctx, s.db, ident.UserID); err != nil {
			return nil, err
		}
	case f.linkUserID != "":
		// The account's owner confirmed with their password when this
		// sign-in began.
		if u, err = findUserByID(ctx, s.db, f.linkUserID); err != nil {
			return nil, err
		}
		if _, err := findUserIdentity(ctx, s.db, c.TenantID, u.id); err == nil {
			return nil, s.refuse(ctx, tenantry.EConflict, "Your account is already linked to another identity of this tenant's provider", ReasonLinkRequired, f)
		}
		linked = true
	default:
		if cl.Email == "" {
			return nil, s.refuse(ctx, tenantry.ESSONotProvisioned, "The identity provider gave no email address", ReasonNoEmail, f)
		}
		u, err = findUserByEmail(ctx, s.db, cl.Email)
		switch {
		case err == nil:
			verified, err := domainVerifiedBy(ctx, s.db, c.TenantID, EmailDomain(cl.Email))
			if err != nil {
				return nil, err
			}
			if !cl.EmailVerified || !verified {
				// Never merged silently: an address the provider does not
				// vouch for, or whose domain the tenant has not proven,
				// may be anyone's.
				r := s.refuse(ctx, tenantry.ESSOLinkRequired,
					"An account with this email already exists: sign in with its password and link this identity once", ReasonLinkRequired, f).(*Refusal)
				r.Err.Details = map[string]any{"link_url": "/api/auth/sso/link/" + c.TenantID}
				return nil, r
			}
			linked = true
		case errors.Is(err, sqldb.ErrNoRows):
			if !a.Enabled {
				return nil, s.refuse(ctx, tenantry.ESSONotProvisioned, "User not found and auto-provisioning is disabled", ReasonNotProvisioned, f)
			}
			first, last := names(cl)
			u = &userRow{id: uuid.NewString(), email: cl.Email, active: true, first: first, last: last}
			provisioned = true
		default:
			return nil, err
		}
	}
	if !u.active {
		return nil, s.refuse(ctx, tenantry.EAccountInactive, "Your account has been deactivated. Please contact support.", ReasonInactive, f)
	}
	if !a.Enabled && !provisioned {
		member, err := isMember(ctx, s.db, c.TenantID, u.id)
		if err != nil {
			return nil, err
		}
		if !member {
			return nil, s.refuse(ctx, tenantry.ESSONotProvisioned, "User exists but has no access to tenant", ReasonNotProvisioned, f)
		}
	}
	role, mapped := a.roleFor(cl.Groups)
	now := sqldb.Now()
	identityID := uuid.NewString()
	if ident != nil {
		identityID = ident.ID
	}
	audit.SetActor(ctx, u.id)
	audit.SetTenant(ctx, c.TenantID)
	audit.SetTarget(ctx, "user", u.id)
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if provisioned {
			_, err := tx.Exec(ctx, `
				INSERT INTO users (id, email, first_name, last_name, password_hash, is_active, is_platform_admin, created_at, updated_at)
				VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $7)`, u.id, u.email, u.first, u.last, true, false, now)
			if errors.Is(err, sqldb.ErrUniqueViolation) {
				return tenantry.Errorf(tenantry.EConflict, "An account with this email was just created; sign in again")
			} else if err != nil {
				return err
			}
			if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserRegistered, "", u.id, map[string]any{
				"user_id": u.id, "email": u.email, "first_name": u.first, "last_name": u.last, "source": "sso",
			}); err != nil {
				return err
			}
			if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventSSOUserProvisioned, c.TenantID, u.id, map[string]any{
				"tenant_id": c.TenantID, "user_id": u.id, "email": u.email,
			}); err != nil {
				return err
			}
		} else if a.SyncAttributesOnLogin && (cl.GivenName != "" || cl.FamilyName != "") {
			first, last := names(cl)
			if first != u.first || last != u.last {
				if _, err := tx.Exec(ctx, `UPDATE users SET first_name = $2, last_name = $3, updated_at = $4 WHERE id = $1`, u.id, first, last, now); err != nil {
					return err
				}
			}
		}
		if ident == nil {
			if err := insertIdentity(ctx, tx, &Identity{ID: identityID, TenantID: c.TenantID, UserID: u.id, Issuer: cl.Issuer, Subject: cl.Subject,
				ProviderTenantID: cl.Directory, ObjectID: cl.ObjectID, Email: cl.Email, DisplayName: cl.Name, LastLoginAt: now, CreatedAt: now}); err != nil {
				return err
			}
			if linked {
				if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventSSOIdentityLinked, c.TenantID, u.id, map[string]any{
					"tenant_id": c.TenantID, "user_id": u.id, "issuer": cl.Issuer, "subject": cl.Subject,
					"by": map[bool]string{true: "password_confirmation", false: "verified_domain"}[f.linkUserID != ""],
				}); err != nil {
					return err
				}
				// The owner hears of it: a link is a new way into their account.
				if err := s.accounts.SecurityAlert(ctx, tx, u.id, mail.AlertSSOLinked, string(c.ProviderType)); err != nil {
					return err
				}
			}
		} else if err := touchIdentity(ctx, tx, identityID, cl.Email, cl.Name, now); err != nil {
			return err
		}
		if a.Enabled {
			sync, err := s.tenants.SyncMember(ctx, tx, c.TenantID, u.id, role, true)
			if err != nil {
				return err
			}
			switch {
			case sync.Added:
				audit.Annotate(ctx, "membership_added", map[string]any{"role": sync.Role, "by_group": mapped})
			case sync.Changed:
				audit.Annotate(ctx, "role_changed", map[string]any{"from": sync.Before, "to": sync.Role, "by_group": mapped})
			case sync.KeptLastAdmin:
				audit.Annotate(ctx, "role_kept", map[string]any{"role": sync.Role, "mapped": role, "why": "last_admin"})
			}
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventSSOLogin, c.TenantID, u.id, map[string]any{
			"tenant_id": c.TenantID, "user_id": u.id, "provider_type": c.ProviderType, "provisioned": provisioned, "linked": linked,
		})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.Annotate(ctx, "provider_type", c.ProviderType)
	if provisioned {
		audit.Annotate(ctx, "provisioned", true)
	}
	if linked {
		audit.Annotate(ctx, "linked", true)
	}
	if err := s.keepTokens(ctx, c.TenantID, identityID, pt, now); err != nil {
		// The sign-in stands without them: only user-info and refresh
		// need them.
		s.logger.WarnContext(ctx, "storing provider tokens", "tenant_id", c.TenantID, "error", err)
	}
	return &Completed{TenantID: c.TenantID, UserID: u.id}, nil
}

// keepTokens stores the provider's tokens sealed.
func (s *Service) keepTokens(ctx context.Context, tenantID, identityID string, pt *providerTokens, now time.Time) error {
	if pt == nil || pt.access == "" {
		return nil
	}
	access, err := s.seal(ctx, tenantID, []byte(pt.access), tokenAAD(identityID, "access_token"))
	if err != nil {
		return err
	}
	var refresh []byte
	if pt.refresh != "" {
		if refresh, err = s.seal(ctx, tenantID, []byte(pt.refresh), tokenAAD(identityID, "refresh_token")); err != nil {
			return err
		}
	}
	var expires *time.Time
	if !pt.expiry.IsZero() {
		e := pt.expiry.UTC().Truncate(time.Microsecond)
		expires = &e
	}
	return storeTokens(ctx, s.db, identityID, access, refresh, expires, now)
}

// graphGroups lists the signed-in user's groups through Microsoft Graph,
// for a token whose groups Entra left out for being too many.
func (s *Service) graphGroups(ctx context.Context, accessToken string) ([]string, error) {
	if accessToken == "" {
		return nil, errors.New("no access token to ask Microsoft Graph with")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body := bytes.NewReader([]byte(`{"securityEnabledOnly":false}`))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.GraphURL+"/v1.0/me/getMemberObjects", body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return nil, errors.New("Microsoft Graph unreachable")
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("Microsoft Graph answered %d", res.StatusCode)
	}
	var out struct {
		Value []string `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&out); err != nil {
		return nil, errors.New("Microsoft Graph's answer is not valid")
	}
	return out.Value, nil
}

// Exchange trades a one-time code from a completed sign-in for a session.
func (s *Service) Exchange(ctx context.Context, code string) (*Completed, error) {
	if code == "" || len(code) > 256 {
		audit.Annotate(ctx, "reason", "code_invalid")
		return nil, tenantry.Errorf(tenantry.ESSOCodeInvalid, "The code is invalid, expired or already used")
	}
	tenantID, userID, err := consumeCode(ctx, s.db, hash(code), sqldb.Now())
	if errors.Is(err, sqldb.ErrNoRows) {
		audit.Annotate(ctx, "reason", "code_invalid")
		return nil, tenantry.Errorf(tenantry.ESSOCodeInvalid, "The code is invalid, expired or already used")
	} else if err != nil {
		return nil, err
	}
	audit.SetActor(ctx, userID)
	audit.SetTenant(ctx, tenantID)
	login, err := s.accounts.OpenSSOSession(ctx, userID, tenantID)
	if err != nil {
		return nil, err
	}
	return &Completed{TenantID: tenantID, UserID: userID, Login: login}, nil
}

// StartLink begins a sign-in that links the identity it proves to the
// caller's account, once the caller confirmed their password.
func (s *Service) StartLink(ctx context.Context, password string, in StartInput) (*Started, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	if err := s.accounts.CheckPassword(ctx, password); err != nil {
		return nil, err
	}
	in.LinkUserID = p.UserID
	return s.Start(ctx, in)
}
