package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/sqldb"
)

// ImpersonationTTL bounds an administrator's acting as a user: the token
// expires with its session, and no refresh token extends either.
const ImpersonationTTL = 15 * time.Minute

// maxImpersonationReason is what the sessions table keeps of a reason.
const maxImpersonationReason = 500

const reasonImpersonationEnded = "impersonation_ended"

// Impersonation is an administrator's access as another user.
type Impersonation struct {
	AccessToken string
	ExpiresAt   time.Time
	SessionID   string
	User        *tenantry.User
}

// Impersonate lets the platform administrator making the request act as
// userID, for reason, through a session of its own that the user sees and
// is mailed about. Administrators cannot be impersonated, so that acting as
// someone never adds to what the administrator could already do as
// themselves, nor hides who acts on the platform.
func (s *Service) Impersonate(ctx context.Context, userID, reason string) (*Impersonation, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !p.PlatformAdmin || p.ImpersonatorID != "" {
		return nil, tenantry.Errorf(tenantry.EForbidden, "Platform administrators only")
	}
	audit.SetTarget(ctx, "user", userID)
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return nil, tenantry.FieldErrors{"reason": {"Say why you act as this user"}}.Err()
	case utf8.RuneCountInString(reason) > maxImpersonationReason:
		return nil, tenantry.FieldErrors{"reason": {"At most 500 characters"}}.Err()
	case strings.ContainsFunc(reason, unicode.IsControl):
		return nil, tenantry.FieldErrors{"reason": {"No control characters"}}.Err()
	}
	audit.Annotate(ctx, "reason", reason)
	if userID == p.UserID {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "You cannot impersonate yourself")
	}
	now := sqldb.Now()
	meta := tenantry.RequestMetaFromContext(ctx)
	sess := &session{
		id:     uuid.NewString(),
		userID: userID,
		// Never handed out: the session accepts no refresh.
		refreshJTI:          uuid.NewString(),
		createdAt:           now,
		expiresAt:           now.Add(ImpersonationTTL),
		clientIP:            truncate(meta.ClientIP, 64),
		userAgent:           truncate(meta.UserAgent, 512),
		impersonatorID:      p.UserID,
		impersonationReason: reason,
	}
	var target *tenantry.User
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		u, err := findUser(ctx, tx, userID)
		switch {
		case errors.Is(err, sqldb.ErrNoRows):
			return tenantry.Errorf(tenantry.ENotFound, "User not found")
		case err != nil:
			return err
		case u.PlatformAdmin:
			return tenantry.Errorf(tenantry.EForbidden, "Platform administrators cannot be impersonated")
		case !u.IsActive:
			return tenantry.Errorf(tenantry.EConflict, "The account is deactivated")
		}
		target = u
		if err := insertSession(ctx, tx, sess); err != nil {
			return err
		}
		return s.alert(ctx, tx, u, mail.AlertImpersonationStarted, nil)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.Annotate(ctx, "session_id", sess.id)
	access, err := s.tokens.IssueActing(userID, sess.id, uuid.NewString(), p.UserID, now, sess.expiresAt)
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "impersonation started", "user_id", userID, "impersonator_id", p.UserID, "session_id", sess.id)
	return &Impersonation{AccessToken: access, ExpiresAt: sess.expiresAt, SessionID: sess.id, User: target}, nil
}

// EndImpersonation ends the impersonation the request is made with: its
// token stops working at once.
func (s *Service) EndImpersonation(ctx context.Context) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if p.ImpersonatorID == "" {
		return tenantry.Errorf(tenantry.EBadRequest, "This token is not an impersonation")
	}
	audit.SetTarget(ctx, "user", p.UserID)
	audit.Annotate(ctx, "session_id", p.SessionID)
	err = s.endSession(ctx, p, reasonImpersonationEnded)
	if err == nil {
		s.logger.InfoContext(ctx, "impersonation ended", "user_id", p.UserID, "impersonator_id", p.ImpersonatorID, "session_id", p.SessionID)
	}
	return err
}
