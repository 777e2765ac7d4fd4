package account

import (
	"context"
	"errors"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// credentials is what login needs about a user beyond the public profile.
type credentials struct {
	user         tenantry.User
	passwordHash string
}

const userColumns = `id, email, first_name, last_name, is_active, is_platform_admin, email_verified_at IS NOT NULL, locale, created_at, updated_at`

func scanUser(row sqldb.Row) (*tenantry.User, error) {
	var u tenantry.User
	err := row.Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.IsActive, &u.PlatformAdmin, &u.EmailVerified, &u.Locale, &u.CreatedAt, &u.UpdatedAt)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "User not found")
	}
	return &u, err
}

func insertUser(ctx context.Context, q sqldb.Querier, u *tenantry.User, hash string) error {
	_, err := q.Exec(ctx, `
		INSERT INTO users (id, email, first_name, last_name, password_hash, is_active, is_platform_admin, email_verified_at, locale, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		u.ID, u.Email, u.FirstName, u.LastName, hash, u.IsActive, u.PlatformAdmin, verifiedAt(u), u.Locale, u.CreatedAt, u.UpdatedAt)
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return tenantry.Errorf(tenantry.EConflict, "A user with this email already exists")
	}
	return err
}

// verifiedAt is what a new account's email_verified_at starts as.
func verifiedAt(u *tenantry.User) any {
	if u.EmailVerified {
		return u.CreatedAt
	}
	return nil
}

func findUser(ctx context.Context, q sqldb.Querier, id string) (*tenantry.User, error) {
	return scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

func findUserByEmail(ctx context.Context, q sqldb.Querier, email string) (*tenantry.User, error) {
	return scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
}

func findCredentials(ctx context.Context, q sqldb.Querier, email string) (*credentials, error) {
	var c credentials
	var hash *string
	u := &c.user
	err := q.QueryRow(ctx, `
		SELECT `+userColumns+`, password_hash
		FROM users WHERE email = $1`, email).
		Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.IsActive, &u.PlatformAdmin, &u.EmailVerified, &u.Locale, &u.CreatedAt, &u.UpdatedAt, &hash)
	if err != nil {
		return nil, err
	}
	if hash != nil {
		c.passwordHash = *hash
	}
	return &c, nil
}

func passwordHash(ctx context.Context, q sqldb.Querier, userID string) (string, error) {
	var hash *string
	if err := q.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&hash); err != nil {
		return "", err
	}
	if hash == nil {
		return "", nil
	}
	return *hash, nil
}

func setPasswordHash(ctx context.Context, q sqldb.Querier, userID, hash string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, userID, hash, now)
	return err
}

func updateProfile(ctx context.Context, q sqldb.Querier, userID string, first, last, locale *string, now time.Time) error {
	_, err := q.Exec(ctx, `
		UPDATE users SET first_name = COALESCE($2, first_name), last_name = COALESCE($3, last_name),
		       locale = COALESCE($4, locale), updated_at = $5
		WHERE id = $1`, userID, first, last, locale, now)
	return err
}

// failureLock reads an email's failed-login accounting: whether it has a
// row at all, and the end of its lock, if one was ever set (it may have run
// out).
func failureLock(ctx context.Context, q sqldb.Querier, email string) (found bool, lockedUntil *time.Time, err error) {
	err = q.QueryRow(ctx, `SELECT locked_until FROM login_failures WHERE email = $1`, email).Scan(&lockedUntil)
	if errors.Is(err, sqldb.ErrNoRows) {
		return false, nil, nil
	}
	return err == nil, lockedUntil, err
}

// reserveAttempt counts one password attempt against an email before the
// password is checked, whether or not an account has it: one statement
// either way, so that both cost the same. A lock that has run out starts the
// count over. The count only grows while the email is not locked, in a
// single statement, so concurrent attempts can never count more than max;
// the attempt that reaches max sets the lock. It returns the attempt's place
// in the count, or 0 when the email is locked and the attempt refused.
func reserveAttempt(ctx context.Context, q sqldb.Querier, email string, max int, now, lockUntil time.Time) (int, error) {
	// The lock a first attempt sets, which only a limit of one does.
	var firstLock *time.Time
	if max <= 1 {
		firstLock = &lockUntil
	}
	var n int
	err := q.QueryRow(ctx, `
		INSERT INTO login_failures (email, failures, locked_until, last_failure_at)
		VALUES ($1, 1, $5, $3)
		ON CONFLICT (email) DO UPDATE
		SET failures = CASE WHEN login_failures.locked_until <= $3 THEN 1 ELSE login_failures.failures + 1 END,
		    locked_until = CASE
		        WHEN login_failures.locked_until <= $3 THEN $5
		        WHEN login_failures.failures + 1 >= $2 THEN $4
		        ELSE login_failures.locked_until END,
		    last_failure_at = $3
		WHERE login_failures.locked_until IS NULL OR login_failures.locked_until <= $3
		RETURNING failures`, email, max, now, lockUntil, firstLock).Scan(&n)
	if errors.Is(err, sqldb.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// clearFailures deletes an email's count. Unless lift is set, a lock in
// force at now stays.
func clearFailures(ctx context.Context, q sqldb.Querier, email string, lift bool, now time.Time) error {
	if lift {
		_, err := q.Exec(ctx, `DELETE FROM login_failures WHERE email = $1`, email)
		return err
	}
	_, err := q.Exec(ctx, `DELETE FROM login_failures WHERE email = $1 AND (locked_until IS NULL OR locked_until <= $2)`, email, now)
	return err
}

// deleteStaleFailures removes the accounting rows that no longer hold
// anything: no lock in force, and no failure since staleBefore.
func deleteStaleFailures(ctx context.Context, q sqldb.Querier, now, staleBefore time.Time) (int64, error) {
	return q.Exec(ctx, `
		DELETE FROM login_failures
		WHERE last_failure_at < $2 AND (locked_until IS NULL OR locked_until <= $1)`, now, staleBefore)
}

func setActive(ctx context.Context, q sqldb.Querier, userID string, active bool, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE users SET is_active = $2, updated_at = $3 WHERE id = $1`, userID, active, now)
	return err
}

func setPlatformAdmin(ctx context.Context, q sqldb.Querier, userID string, now time.Time) error {
	// An operator vouches for the address of the administrators they
	// make.
	_, err := q.Exec(ctx, `UPDATE users SET is_platform_admin = $2, email_verified_at = COALESCE(email_verified_at, $3), updated_at = $3
		WHERE id = $1`, userID, true, now)
	return err
}

// setEmailVerified records that the account proved it receives mail at
// email; false when the account no longer has that address.
func setEmailVerified(ctx context.Context, q sqldb.Querier, userID, email string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE users SET email_verified_at = COALESCE(email_verified_at, $3), updated_at = $3
		WHERE id = $1 AND email = $2`, userID, email, now)
	return n == 1, err
}

// session is a row of the sessions table.
type session struct {
	id, userID, refreshJTI string
	createdAt, expiresAt   time.Time
	lastUsedAt             time.Time
	revokedAt              *time.Time
	clientIP, userAgent    string
	// ssoTenantID is the tenant whose single sign-on opened the session;
	// empty for a password.
	ssoTenantID string
	// impersonatorID is the platform administrator acting as the user,
	// with the reason they gave; empty for the user's own sessions.
	impersonatorID, impersonationReason string
}

func (s *session) authMethod() string {
	if s.impersonatorID != "" {
		return "impersonation"
	}
	if s.ssoTenantID != "" {
		return "sso"
	}
	return "password"
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func insertSession(ctx context.Context, q sqldb.Querier, s *session) error {
	_, err := q.Exec(ctx, `
		INSERT INTO sessions (id, user_id, refresh_jti, created_at, refreshed_at, last_used_at, expires_at, client_ip, user_agent, auth_method,
		                      sso_tenant_id, impersonator_id, impersonation_reason)
		VALUES ($1, $2, $3, $4, $4, $4, $5, $6, $7, $8, $9, $10, $11)`,
		s.id, s.userID, s.refreshJTI, s.createdAt, s.expiresAt, s.clientIP, s.userAgent, s.authMethod(), nullable(s.ssoTenantID),
		nullable(s.impersonatorID), nullable(s.impersonationReason))
	return err
}

// rotateRefresh replaces the session's expected refresh token, only if the
// presented one is still the expected one and the session stands. Zero
// rows means the presented token was already used (or the session ended).
func rotateRefresh(ctx context.Context, q sqldb.Querier, sessionID, presented, next string, now, expires time.Time) (bool, error) {
	n, err := q.Exec(ctx, `
		UPDATE sessions SET refresh_jti = $3, refreshed_at = $4, last_used_at = $4, expires_at = $5
		WHERE id = $1 AND refresh_jti = $2 AND revoked_at IS NULL AND expires_at > $4`,
		sessionID, presented, next, now, expires)
	return n == 1, err
}

func revokeSession(ctx context.Context, q sqldb.Querier, sessionID, reason string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `
		UPDATE sessions SET revoked_at = $2, revoke_reason = $3
		WHERE id = $1 AND revoked_at IS NULL`, sessionID, now, reason)
	return n == 1, err
}

// revokeUserSessions ends every standing session of a user except keep
// (which may be empty) and returns how many it ended.
func revokeUserSessions(ctx context.Context, q sqldb.Querier, userID, keep, reason string, now time.Time) (int64, error) {
	if keep == "" {
		return q.Exec(ctx, `
			UPDATE sessions SET revoked_at = $2, revoke_reason = $3
			WHERE user_id = $1 AND revoked_at IS NULL`, userID, now, reason)
	}
	return q.Exec(ctx, `
		UPDATE sessions SET revoked_at = $2, revoke_reason = $3
		WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4`, userID, now, reason, keep)
}

// standing is what each authenticated request learns about its session and
// its account, in one indexed lookup.
type standing struct {
	user       tenantry.User
	revoked    bool
	lastUsedAt time.Time
	// ssoTenantID is the tenant whose single sign-on opened the session.
	ssoTenantID string
	// impersonatorID is the administrator acting through the session;
	// actorStands is false once that account is deactivated or no longer
	// an administrator, which ends the impersonation.
	impersonatorID string
	actorStands    bool
}

// admits refuses a session that does not belong to userID, was revoked, or
// whose account was deactivated.
func (st *standing) admits(userID string) error {
	switch {
	case st.user.ID != userID:
		return errTokenInvalid
	case st.revoked:
		return errTokenRevoked
	case !st.user.IsActive:
		return errInactive
	case !st.actorStands:
		return errTokenRevoked
	}
	return nil
}

func sessionStanding(ctx context.Context, q sqldb.Querier, sessionID string) (*standing, error) {
	var st standing
	u := &st.user
	err := q.QueryRow(ctx, standingStatement.For(q.Dialect()), sessionID).
		Scan(&st.revoked, sqldb.ScanTime(&st.lastUsedAt), &st.ssoTenantID, &st.impersonatorID,
			&u.ID, &u.Email, &u.FirstName, &u.LastName, &u.IsActive, &u.PlatformAdmin,
			&u.EmailVerified, &u.Locale, sqldb.ScanTime(&u.CreatedAt), sqldb.ScanTime(&u.UpdatedAt))
	if err != nil {
		return nil, err
	}
	st.actorStands = true
	if st.impersonatorID != "" {
		// Asked apart, so that the lookup of every other request stays a
		// single-row join.
		err = q.QueryRow(ctx, `SELECT is_active AND is_platform_admin FROM users WHERE id = $1`, st.impersonatorID).Scan(&st.actorStands)
		if errors.Is(err, sqldb.ErrNoRows) {
			st.actorStands, err = false, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return &st, nil
}

// standingStatement is sessionStanding's query, which every authenticated
// request runs.
var standingStatement = sqldb.NewStatement(func(d sqldb.Dialect) string { //nolint:gochecknoglobals // a constant statement, written out once per engine
	return `
		SELECT s.revoked_at IS NOT NULL, ` + d.Time("s.last_used_at") + `, COALESCE(s.sso_tenant_id, ''),
		       COALESCE(CAST(s.impersonator_id AS TEXT), ''),
		       u.id, u.email, u.first_name, u.last_name, u.is_active, u.is_platform_admin, u.email_verified_at IS NOT NULL, u.locale,
		       ` + d.Time("u.created_at") + `, ` + d.Time("u.updated_at") + `
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = $1`
})

// deleteExpiredSessions removes sessions that can no longer be used: expired
// or revoked before cutoff.
func deleteExpiredSessions(ctx context.Context, q sqldb.Querier, cutoff time.Time) (int64, error) {
	return q.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, cutoff)
}

// touchSession moves a session's last use to now, unless it was already
// noted since cutoff: the condition makes concurrent requests of one
// session write once between them.
func touchSession(ctx context.Context, q sqldb.Querier, sessionID string, now, cutoff time.Time) error {
	_, err := q.Exec(ctx, `UPDATE sessions SET last_used_at = $2 WHERE id = $1 AND last_used_at < $3`, sessionID, now, cutoff)
	return err
}

// standingSessions returns a user's sessions neither revoked nor expired at
// now, newest first.
func standingSessions(ctx context.Context, q sqldb.Querier, userID string, now time.Time) ([]session, error) {
	d := q.Dialect()
	rows, err := q.Query(ctx, `
		SELECT id, `+d.Time("created_at")+`, `+d.Time("last_used_at")+`, `+d.Time("expires_at")+`, client_ip, user_agent,
		       COALESCE(sso_tenant_id, ''), COALESCE(CAST(impersonator_id AS TEXT), '')
		FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, id DESC`, userID, now)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []session
	for rows.Next() {
		s := session{userID: userID}
		if err := rows.Scan(&s.id, sqldb.ScanTime(&s.createdAt), sqldb.ScanTime(&s.lastUsedAt), sqldb.ScanTime(&s.expiresAt),
			&s.clientIP, &s.userAgent, &s.ssoTenantID, &s.impersonatorID); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// revokeUserSession ends one standing session of a user; false when the
// user has no such session standing at now.
func revokeUserSession(ctx context.Context, q sqldb.Querier, userID, sessionID, reason string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `
		UPDATE sessions SET revoked_at = $3, revoke_reason = $4
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3`, sessionID, userID, now, reason)
	return n == 1, err
}

// userIDByEmail returns the id of the account with an email, "" when none
// has it.
func userIDByEmail(ctx context.Context, q sqldb.Querier, email string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id FROM users WHERE email = $1`, email).Scan(&id)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", nil
	}
	return id, err
}
