package account

import (
	"context"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/sqldb"
)

// Revocations a user or an administrator asked for, as recorded on the
// session.
const (
	reasonUserRevoked  = "user_revoked"
	reasonAdminRevoked = "admin_revoked"
)

// lastUseGranularity is how stale a session's last use may be before a
// request records it again: the list of sessions needs no finer time, and
// a busy session costs at most one write that often.
const lastUseGranularity = time.Minute

// Session is a standing session as its owner, or an administrator, sees it.
type Session struct {
	ID string
	// Device is a short label for the user agent: "Firefox on Linux".
	Device    string
	UserAgent string
	ClientIP  string
	// AuthMethod is password, sso, or impersonation for a platform
	// administrator acting as the user.
	AuthMethod string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	// Current is set on the session of the request's own token.
	Current bool
}

// noteUse records that a session served a request, when its last use on
// record is more than lastUseGranularity old. Failing to is no reason to
// refuse the request.
func (s *Service) noteUse(ctx context.Context, sessionID string, last time.Time) {
	now := sqldb.Now()
	cutoff := now.Add(-lastUseGranularity)
	if !last.Before(cutoff) {
		return
	}
	if err := touchSession(ctx, s.db, sessionID, now, cutoff); err != nil {
		s.logger.WarnContext(ctx, "recording a session's last use", "session_id", sessionID, "error", err)
	}
}

// MySessions returns the caller's standing sessions, newest first.
func (s *Service) MySessions(ctx context.Context) ([]Session, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	return s.sessionsOf(ctx, p.UserID, p.SessionID)
}

// UserSessions returns the standing sessions of any account, for platform
// administration.
func (s *Service) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	if _, err := findUser(ctx, s.db, userID); err != nil {
		return nil, err
	}
	return s.sessionsOf(ctx, userID, "")
}

func (s *Service) sessionsOf(ctx context.Context, userID, current string) ([]Session, error) {
	rows, err := standingSessions(ctx, s.db, userID, sqldb.Now())
	if err != nil {
		return nil, err
	}
	out := make([]Session, len(rows))
	for i, r := range rows {
		out[i] = Session{ID: r.id, Device: Device(r.userAgent), UserAgent: r.userAgent, ClientIP: r.clientIP, AuthMethod: r.authMethod(),
			CreatedAt: r.createdAt, LastUsedAt: r.lastUsedAt, ExpiresAt: r.expiresAt, Current: r.id == current}
	}
	return out, nil
}

// RevokeMySession ends one of the caller's standing sessions, the current
// one included, which then works like a logout. Any other id, another
// user's session among them, is not found.
func (s *Service) RevokeMySession(ctx context.Context, sessionID string) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	audit.SetTarget(ctx, "user", p.UserID)
	audit.Annotate(ctx, "session_id", sessionID)
	audit.Annotate(ctx, "current", sessionID == p.SessionID)
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		ended, err := revokeUserSession(ctx, tx, p.UserID, sessionID, reasonUserRevoked, sqldb.Now())
		if err != nil {
			return err
		}
		if !ended {
			return tenantry.Errorf(tenantry.ENotFound, "Session not found")
		}
		return s.revoked(ctx, tx, p.UserID, sessionID, reasonUserRevoked, 1)
	})
	if err != nil {
		return err
	}
	s.streams.Committed()
	return nil
}

// RevokeMyOtherSessions ends every standing session of the caller but the
// current one, and returns how many it ended.
func (s *Service) RevokeMyOtherSessions(ctx context.Context) (int64, error) {
	p, err := principal(ctx)
	if err != nil {
		return 0, err
	}
	return s.revokeAll(ctx, p.UserID, p.SessionID, reasonUserRevoked)
}

// RevokeUserSessions ends every standing session of an account, for
// platform administration, and returns how many it ended.
func (s *Service) RevokeUserSessions(ctx context.Context, userID string) (int64, error) {
	if _, err := findUser(ctx, s.db, userID); err != nil {
		return 0, err
	}
	return s.revokeAll(ctx, userID, "", reasonAdminRevoked)
}

// revokeAll ends every standing session of a user but keep (which may be
// empty), and records it.
func (s *Service) revokeAll(ctx context.Context, userID, keep, reason string) (int64, error) {
	audit.SetTarget(ctx, "user", userID)
	var n int64
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		var err error
		if n, err = revokeUserSessions(ctx, tx, userID, keep, reason, sqldb.Now()); err != nil || n == 0 {
			return err
		}
		return s.revoked(ctx, tx, userID, "", reason, n)
	})
	if err != nil {
		return 0, err
	}
	s.streams.Committed()
	audit.Annotate(ctx, "revoked_sessions", n)
	return n, nil
}
