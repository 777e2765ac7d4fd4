// Package account manages users and their sessions: registration, login with
// lockout, refresh-token rotation with reuse detection, logout, profile and
// password changes, and the authentication of every request. Sessions live in
// the control database, so a revocation is seen at once by every process.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/password"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/token"
)

// Config holds the account rules that operators tune.
type Config struct {
	// MaxFailedLogins consecutive failures lock an account.
	MaxFailedLogins int
	// LockoutDuration is how long a locked account stays locked.
	LockoutDuration time.Duration
	// Metrics, when set, counts refused sign-ins and lockouts.
	Metrics Metrics
	// Mailer, when set, sends verification, reset and alert mails.
	Mailer *mailer.Mailer
	// RequireEmailVerification makes registering an address that has an
	// account answer like a new registration (its owner is mailed
	// instead); tenant services refuse unverified accounts.
	RequireEmailVerification bool
	// SignInAlerts is SignInAlertsDevice, SignInAlertsAddress or
	// SignInAlertsOff.
	SignInAlerts string
}

// When a sign-in is news to the account's owner.
const (
	// SignInAlertsDevice alerts on a user agent the account never signed
	// in with.
	SignInAlertsDevice = "device"
	// SignInAlertsAddress also alerts on a new client address.
	SignInAlertsAddress = "address"
	SignInAlertsOff     = "off"
)

// Metrics records the outcomes of password checks.
type Metrics interface {
	// SignInFailed records a refused attempt: reason is
	// invalid_credentials or locked.
	SignInFailed(reason string)
	// LockedOut records an address locked by its failures.
	LockedOut()
}

// Service implements the account use cases.
type Service struct {
	db      sqldb.DB
	hasher  *password.Hasher
	tokens  *token.Issuer
	streams *outbox.Streams
	cfg     Config
	logger  *slog.Logger
	mail    *mailer.Mailer
}

// NewService returns a Service over the control database, recording its
// events through streams.
func NewService(db sqldb.DB, hasher *password.Hasher, tokens *token.Issuer, streams *outbox.Streams, cfg Config, logger *slog.Logger) *Service {
	if cfg.MaxFailedLogins <= 0 {
		cfg.MaxFailedLogins = 5
	}
	if cfg.LockoutDuration <= 0 {
		cfg.LockoutDuration = 15 * time.Minute
	}
	if cfg.SignInAlerts == "" {
		cfg.SignInAlerts = SignInAlertsDevice
	}
	s := &Service{db: db, hasher: hasher, tokens: tokens, streams: streams, cfg: cfg, logger: logger, mail: cfg.Mailer}
	s.registerPreparers()
	return s
}

// Session revocation reasons, recorded on the session.
const (
	reasonLogout          = "logout"
	reasonRefreshReuse    = "refresh_token_reuse"
	reasonPasswordChanged = "password_changed"
	reasonDeactivated     = "account_deactivated"
	reasonPasswordReset   = "password_reset"
)

// Errors every client sees the same way whatever the cause, so that the
// answer reveals nothing about which accounts exist.
var (
	errInvalidCredentials = tenantry.Errorf(tenantry.EInvalidCredentials, "Invalid email or password")
	errInactive           = tenantry.Errorf(tenantry.EAccountInactive, "Your account has been deactivated. Please contact support.")
	errTokenRevoked       = tenantry.Errorf(tenantry.ETokenRevoked, "Token has been revoked")
	errTokenExpired       = tenantry.Errorf(tenantry.ETokenExpired, "Token has expired")
	errTokenInvalid       = tenantry.Errorf(tenantry.EUnauthorized, "Invalid token")
)

func lockedError(remaining time.Duration) error {
	return &tenantry.Error{
		Code:       tenantry.EAccountLocked,
		Message:    "Too many failed login attempts. The account is temporarily locked.",
		RetryAfter: int(math.Ceil(remaining.Seconds())),
	}
}

// Registration is what a new user submits.
type Registration struct {
	FirstName string
	LastName  string
	Email     string
	Password  string
	// Locale is the language of the account's mails; empty is English.
	Locale string
}

// Register creates an account and mails its address a verification link.
// With RequireEmailVerification, an address that has an account is
// answered like a new one: the hash is computed and the answer made alike,
// and the address's owner is mailed that someone tried to register it.
// The user returned then has an id no account has.
func (s *Service) Register(ctx context.Context, r Registration) (*tenantry.User, error) {
	return s.register(ctx, r, newAccount{})
}

// newAccount is how an account comes to be, beside what its owner gives.
type newAccount struct {
	// verified: someone vouches for the address, which is not mailed.
	verified bool
	// platformAdmin makes the account a platform administrator.
	platformAdmin bool
	// reveal answers a conflict for an address that has an account, as
	// an administrator creating accounts must learn.
	reveal bool
}

// checkAccount validates what someone gives for a new active account (its
// address too when withEmail) and hashes its password.
func (s *Service) checkAccount(ctx context.Context, r Registration, withEmail bool) (*tenantry.User, string, error) {
	errs := tenantry.FieldErrors{}
	u := &tenantry.User{
		FirstName: name(errs, "first_name", "First name", r.FirstName),
		LastName:  name(errs, "last_name", "Last name", r.LastName),
		IsActive:  true,
		Locale:    mail.DefaultLocale,
	}
	if withEmail {
		u.Email = email(errs, r.Email)
	}
	if r.Locale != "" {
		u.Locale = normalizeLocale(errs, r.Locale)
	}
	newPassword(errs, "password", r.Password)
	if err := errs.Err(); err != nil {
		return nil, "", err
	}
	hash, err := s.hasher.Hash(ctx, r.Password)
	if err != nil {
		return nil, "", err
	}
	return u, hash, nil
}

func (s *Service) register(ctx context.Context, r Registration, how newAccount) (*tenantry.User, error) {
	verified := how.verified
	u, hash, err := s.checkAccount(ctx, r, true)
	if err != nil {
		return nil, err
	}
	u.PlatformAdmin, u.EmailVerified = how.platformAdmin, verified
	now := sqldb.Now()
	u.ID, u.CreatedAt, u.UpdatedAt = uuid.NewString(), now, now
	hide := s.cfg.RequireEmailVerification && !verified && !how.reveal
	// The unique index decides between concurrent registrations of one
	// address: the loser gets a conflict, never a server error.
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if hide {
			if owner, err := findUserByEmail(ctx, tx, u.Email); err == nil {
				return s.registeredAgain(ctx, tx, owner)
			} else if tenantry.ErrorCode(err) != tenantry.ENotFound {
				return err
			}
		}
		if err := insertUser(ctx, tx, u, hash); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserRegistered, "", u.ID, map[string]any{
			"user_id": u.ID, "email": u.Email, "first_name": u.FirstName, "last_name": u.LastName,
		}); err != nil {
			return err
		}
		if verified {
			return nil
		}
		return s.enqueue(ctx, tx, &mailer.Delivery{Kind: mail.KindVerifyEmail, To: u.Email, UserID: u.ID, Locale: u.Locale,
			Params: mailer.Params{"first_name": u.FirstName}})
	})
	if hide && tenantry.ErrorCode(err) == tenantry.EConflict {
		// Another registration of the address won the race.
		err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
			owner, err := findUserByEmail(ctx, tx, u.Email)
			if err != nil {
				return err
			}
			return s.registeredAgain(ctx, tx, owner)
		})
	}
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return u, nil
}

// registeredAgain mails an account's owner that someone tried to register
// their address, in tx.
func (s *Service) registeredAgain(ctx context.Context, tx sqldb.Tx, owner *tenantry.User) error {
	audit.Annotate(ctx, "existing_account", owner.ID)
	return s.enqueue(ctx, tx, &mailer.Delivery{Kind: mail.KindAccountExists, To: owner.Email, UserID: owner.ID, Locale: owner.Locale,
		Params: mailer.Params{"first_name": owner.FirstName}})
}

// revoked records a session revocation event in tx.
func (s *Service) revoked(ctx context.Context, tx sqldb.Tx, userID, sessionID, reason string, count int64) error {
	return s.streams.EmitPlatform(ctx, tx, tenantry.EventSessionRevoked, "", userID, map[string]any{
		"user_id": userID, "session_id": sessionID, "reason": reason, "sessions": count,
	})
}

// Tokens are what a login or a refresh hands out.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int
}

// LoginResult is a successful login.
type LoginResult struct {
	Tokens
	User *tenantry.User
}

// Login checks a password and opens a session. Unknown addresses and wrong
// passwords cost the same and answer the same, lockout included: attempts
// are counted per address, whether or not an account has it, and a success
// clears the count. Each attempt is counted before its password is checked,
// so however many arrive at once, no more than the limit are ever checked.
func (s *Service) Login(ctx context.Context, emailAddr, pw string) (*LoginResult, error) {
	errs := tenantry.FieldErrors{}
	e := email(errs, emailAddr)
	loginPassword(errs, "password", pw)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	at, err := s.reserve(ctx, e)
	if err != nil {
		if tenantry.ErrorCode(err) == tenantry.EAccountLocked {
			s.refusedLocked(ctx, e)
		}
		return nil, err
	}
	c, err := findCredentials(ctx, s.db, e)
	known := err == nil
	var match, rehash bool
	switch {
	case known:
		match, rehash, err = s.hasher.Verify(ctx, pw, c.passwordHash)
	case errors.Is(err, sqldb.ErrNoRows):
		err = s.hasher.VerifyNone(ctx, pw)
	}
	if err != nil {
		return nil, err
	}
	var userID string
	if known {
		userID = c.user.ID
		audit.SetActor(ctx, userID)
	}
	if !match {
		s.failed(ctx, at, userID)
		return nil, errInvalidCredentials
	}
	if err := s.succeeded(ctx, s.db, at); err != nil {
		return nil, err
	}
	if !c.user.IsActive {
		return nil, errInactive
	}
	if rehash {
		s.upgradeHash(ctx, userID, pw)
	}
	tokens, err := s.openSession(ctx, &c.user, sqldb.Now(), "")
	if err != nil {
		return nil, err
	}
	return &LoginResult{Tokens: *tokens, User: &c.user}, nil
}

// attempt is one password check counted against an email's limit before it
// is made.
type attempt struct {
	email string
	// place is the attempt's place in the count; the one at the limit set
	// the lock.
	place int
	until time.Time
}

// reserve counts an attempt against an email, with the same write whether
// or not an account has it, and refuses it when the email is locked. The
// count and the check are one statement, so concurrent attempts cannot all
// pass the check before any is counted.
func (s *Service) reserve(ctx context.Context, emailAddr string) (*attempt, error) {
	now := sqldb.Now()
	at := &attempt{email: emailAddr, until: now.Add(s.cfg.LockoutDuration)}
	n, err := reserveAttempt(ctx, s.db, emailAddr, s.cfg.MaxFailedLogins, now, at.until)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		at.place = n
		return at, nil
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.SignInFailed("locked")
	}
	_, until, err := failureLock(ctx, s.db, emailAddr)
	if err != nil {
		return nil, err
	}
	remaining := s.cfg.LockoutDuration
	if until != nil && until.After(now) {
		remaining = until.Sub(now)
	}
	return nil, lockedError(remaining)
}

// failed notes in the audit record a failure already counted by reserve,
// and when it was the one that started a lockout.
func (s *Service) failed(ctx context.Context, at *attempt, userID string) {
	audit.Annotate(ctx, "failed_logins", at.place)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.SignInFailed("invalid_credentials")
	}
	if at.place < s.cfg.MaxFailedLogins {
		return
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.LockedOut()
	}
	audit.Annotate(ctx, "locked_until", at.until)
	s.lockedOut(ctx, at.email)
	// An address nobody registered stays out of the logs: it may be a
	// mistyped one, or someone's password typed into the wrong field.
	if userID != "" {
		s.logger.WarnContext(ctx, "account locked after repeated failed logins", "user_id", userID)
	} else {
		s.logger.WarnContext(ctx, "unregistered email locked after repeated failed logins")
	}
}

// refusedLocked names in the audit record the account a login refused for
// a lock was for, as a checked password's failure does, so that its owner
// sees the attempt in their history. The answer stays the same whether or
// not an account has the address.
func (s *Service) refusedLocked(ctx context.Context, emailAddr string) {
	id, err := userIDByEmail(ctx, s.db, emailAddr)
	if err != nil {
		s.logger.WarnContext(ctx, "finding the account of a locked address", "error", err)
		return
	}
	if id != "" {
		audit.SetActor(ctx, id)
	}
}

// succeeded clears the count after the right password. A lock that other
// attempts set while this one was being checked stays: they were guesses,
// and this success must not hand their sender a fresh allowance. A lock
// this attempt set itself, by being the last one allowed, is lifted.
func (s *Service) succeeded(ctx context.Context, q sqldb.Querier, at *attempt) error {
	return clearFailures(ctx, q, at.email, at.place >= s.cfg.MaxFailedLogins, sqldb.Now())
}

// upgradeHash replaces a legacy or outdated hash after a successful login,
// the only moment the password is known. Failing to do so is not a reason to
// refuse the login.
func (s *Service) upgradeHash(ctx context.Context, userID, pw string) {
	hash, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = setPasswordHash(ctx, s.db, userID, hash, sqldb.Now())
	}
	if err != nil {
		s.logger.WarnContext(ctx, "upgrading a password hash", "user_id", userID, "error", err)
	}
}

// OpenSSOSession opens a session for an account that signed in through
// the single sign-on of a tenant: the provider vouched for who it is, so no
// password is checked. The session is marked as opened through that
// tenant's sign-on, which a tenant enforcing single sign-on requires. An
// inactive account is refused.
func (s *Service) OpenSSOSession(ctx context.Context, userID, tenantID string) (*LoginResult, error) {
	u, err := findUser(ctx, s.db, userID)
	if err != nil {
		return nil, err
	}
	if !u.IsActive {
		return nil, errInactive
	}
	tokens, err := s.openSession(ctx, u, sqldb.Now(), tenantID)
	if err != nil {
		return nil, err
	}
	return &LoginResult{Tokens: *tokens, User: u}, nil
}

// OpenSession signs u in: a new session and its tokens. The sign-in is
// noted like a login's, new device alert included.
func (s *Service) OpenSession(ctx context.Context, u *tenantry.User) (*Tokens, error) {
	return s.openSession(ctx, u, sqldb.Now(), "")
}

// openSession opens a session for u, marked as opened through the single
// sign-on of ssoTenantID when it is not empty.
func (s *Service) openSession(ctx context.Context, u *tenantry.User, now time.Time, ssoTenantID string) (*Tokens, error) {
	userID := u.ID
	meta := tenantry.RequestMetaFromContext(ctx)
	sess := &session{
		id:         uuid.NewString(),
		userID:     userID,
		refreshJTI: uuid.NewString(),
		createdAt:  now,
		expiresAt:  now.Add(s.tokens.RefreshTTL()),
		clientIP:   truncate(meta.ClientIP, 64),
		userAgent:  truncate(meta.UserAgent, 512),
	}
	sess.ssoTenantID = ssoTenantID
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := insertSession(ctx, tx, sess); err != nil {
			return err
		}
		return s.noteDevice(ctx, tx, u, now)
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return s.issue(userID, sess.id, sess.refreshJTI, now)
}

func (s *Service) issue(userID, sessionID, refreshJTI string, now time.Time) (*Tokens, error) {
	access, _, err := s.tokens.Issue(token.Access, userID, sessionID, uuid.NewString(), now)
	if err != nil {
		return nil, err
	}
	refresh, _, err := s.tokens.Issue(token.Refresh, userID, sessionID, refreshJTI, now)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.tokens.AccessTTL().Seconds())}, nil
}

// Refresh exchanges a refresh token for new tokens. Each refresh token works
// once: presenting one that was already exchanged means it was copied, and
// the whole session is revoked.
func (s *Service) Refresh(ctx context.Context, raw string) (*Tokens, error) {
	claims, err := s.tokens.Parse(raw, token.Refresh)
	if errors.Is(err, token.ErrExpired) {
		return nil, errTokenExpired
	} else if err != nil {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Invalid refresh token")
	}
	now := sqldb.Now()
	next := uuid.NewString()
	var reused bool
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		st, err := sessionStanding(ctx, tx, claims.SessionID)
		if errors.Is(err, sqldb.ErrNoRows) {
			return errTokenRevoked
		} else if err != nil {
			return err
		}
		if err := st.admits(claims.UserID); err != nil {
			return err
		}
		if st.impersonatorID != "" {
			return errTokenInvalid
		}
		rotated, err := rotateRefresh(ctx, tx, claims.SessionID, claims.ID, next, now, now.Add(s.tokens.RefreshTTL()))
		if err != nil {
			return err
		}
		if !rotated {
			// The revocation must commit, so the transaction ends
			// normally and the error is returned after it.
			reused = true
			if _, err := revokeSession(ctx, tx, claims.SessionID, reasonRefreshReuse, now); err != nil {
				return err
			}
			return s.revoked(ctx, tx, claims.UserID, claims.SessionID, reasonRefreshReuse, 1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	audit.SetActor(ctx, claims.UserID)
	audit.SetTarget(ctx, "session", claims.SessionID)
	if reused {
		audit.Annotate(ctx, "session_revoked", reasonRefreshReuse)
		s.streams.Committed()
		s.logger.WarnContext(ctx, "refresh token reuse: session revoked", "session_id", claims.SessionID, "user_id", claims.UserID)
		return nil, tenantry.Errorf(tenantry.ETokenRevoked, "Refresh token already used; the session has been revoked")
	}
	return s.issue(claims.UserID, claims.SessionID, next, now)
}

// Authenticate verifies an access token and that its session still stands:
// one indexed lookup per request, which is what makes logout immediate
// everywhere. The same lookup reads the caller's account, which the
// principal carries.
func (s *Service) Authenticate(ctx context.Context, raw string) (tenantry.Principal, error) {
	claims, err := s.tokens.Parse(raw, token.Access)
	if errors.Is(err, token.ErrExpired) {
		return tenantry.Principal{}, errTokenExpired
	} else if err != nil {
		return tenantry.Principal{}, errTokenInvalid
	}
	st, err := sessionStanding(ctx, s.db, claims.SessionID)
	if errors.Is(err, sqldb.ErrNoRows) {
		return tenantry.Principal{}, errTokenRevoked
	} else if err != nil {
		return tenantry.Principal{}, err
	}
	if err := st.admits(claims.UserID); err != nil {
		return tenantry.Principal{}, err
	}
	if claims.ActorID != st.impersonatorID {
		// A token and a session that disagree on who acts: not ours.
		return tenantry.Principal{}, errTokenInvalid
	}
	s.noteUse(ctx, claims.SessionID, st.lastUsedAt)
	return tenantry.Principal{UserID: claims.UserID, SessionID: claims.SessionID, PlatformAdmin: st.user.PlatformAdmin && st.impersonatorID == "",
		SSOTenantID: st.ssoTenantID, ImpersonatorID: st.impersonatorID, User: &st.user}, nil
}

func principal(ctx context.Context) (tenantry.Principal, error) {
	p, ok := tenantry.PrincipalFromContext(ctx)
	if !ok {
		return p, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	return p, nil
}

// Logout revokes the caller's session: its access and refresh tokens stop
// working at once.
func (s *Service) Logout(ctx context.Context) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	audit.SetTarget(ctx, "session", p.SessionID)
	return s.endSession(ctx, p, reasonLogout)
}

// endSession revokes the session of p for reason, recording the revocation
// with it. A session already ended is left as it is.
func (s *Service) endSession(ctx context.Context, p tenantry.Principal, reason string) error {
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		ended, err := revokeSession(ctx, tx, p.SessionID, reason, sqldb.Now())
		if err != nil || !ended {
			return err
		}
		return s.revoked(ctx, tx, p.UserID, p.SessionID, reason, 1)
	})
	if err == nil {
		s.streams.Committed()
	}
	return err
}

// Me returns the caller's profile, as read when the request was
// authenticated.
func (s *Service) Me(ctx context.Context) (*tenantry.User, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if p.User != nil {
		u := *p.User
		return &u, nil
	}
	return findUser(ctx, s.db, p.UserID)
}

// ProfileUpdate names the fields to change; nil leaves a field alone.
type ProfileUpdate struct {
	FirstName *string
	LastName  *string
	// Locale is the language of the account's mails: en or fr.
	Locale *string
}

// UpdateMe changes the caller's names.
func (s *Service) UpdateMe(ctx context.Context, in ProfileUpdate) (*tenantry.User, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if in.FirstName == nil && in.LastName == nil && in.Locale == nil {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Request body is required")
	}
	errs := tenantry.FieldErrors{}
	if in.FirstName != nil {
		v := name(errs, "first_name", "First name", *in.FirstName)
		in.FirstName = &v
	}
	if in.LastName != nil {
		v := name(errs, "last_name", "Last name", *in.LastName)
		in.LastName = &v
	}
	if in.Locale != nil {
		v := normalizeLocale(errs, *in.Locale)
		in.Locale = &v
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := updateProfile(ctx, tx, p.UserID, in.FirstName, in.LastName, in.Locale, sqldb.Now()); err != nil {
			return err
		}
		changes := map[string]any{}
		if in.FirstName != nil {
			changes["first_name"] = *in.FirstName
		}
		if in.LastName != nil {
			changes["last_name"] = *in.LastName
		}
		if in.Locale != nil {
			changes["locale"] = *in.Locale
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventUserUpdated, "", p.UserID, map[string]any{"user_id": p.UserID, "changes": changes})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	return findUser(ctx, s.db, p.UserID)
}

// ChangePassword replaces the caller's password after checking the current
// one, and revokes the caller's other sessions: whoever else held the
// account is signed out. It returns how many sessions it revoked. Wrong
// current passwords count towards the lockout like failed logins.
func (s *Service) ChangePassword(ctx context.Context, current, next string) (int64, error) {
	p, err := principal(ctx)
	if err != nil {
		return 0, err
	}
	errs := tenantry.FieldErrors{}
	if current == "" {
		errs.Add("current_password", "Current password is required")
	}
	newPassword(errs, "new_password", next)
	if err := errs.Err(); err != nil {
		return 0, err
	}
	u, err := findUser(ctx, s.db, p.UserID)
	if err != nil {
		return 0, err
	}
	at, err := s.reserve(ctx, u.Email)
	if err != nil {
		return 0, err
	}
	currentHash, err := passwordHash(ctx, s.db, p.UserID)
	if err != nil {
		return 0, err
	}
	match, _, err := s.hasher.Verify(ctx, current, currentHash)
	if err != nil {
		return 0, err
	}
	if !match {
		s.failed(ctx, at, p.UserID)
		return 0, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"current_password": {"Current password is incorrect"}}}
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return 0, err
	}
	var revoked int64
	now := sqldb.Now()
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := setPasswordHash(ctx, tx, p.UserID, hash, now); err != nil {
			return err
		}
		// A new password makes every earlier guess moot.
		if err := clearFailures(ctx, tx, u.Email, true, now); err != nil {
			return err
		}
		if revoked, err = revokeUserSessions(ctx, tx, p.UserID, p.SessionID, reasonPasswordChanged, now); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserPasswordChange, "", p.UserID, map[string]any{"user_id": p.UserID}); err != nil {
			return err
		}
		if revoked > 0 {
			if err := s.revoked(ctx, tx, p.UserID, "", reasonPasswordChanged, revoked); err != nil {
				return err
			}
		}
		return s.alert(ctx, tx, u, mail.AlertPasswordChanged, nil)
	})
	if err == nil {
		s.streams.Committed()
		audit.Annotate(ctx, "revoked_sessions", revoked)
	}
	return revoked, err
}

// SetActive activates or deactivates the account with the given email.
// Deactivation also revokes every session of the account.
func (s *Service) SetActive(ctx context.Context, emailAddr string, active bool) (*tenantry.User, error) {
	u, err := findUserByEmail(ctx, s.db, strings.ToLower(strings.TrimSpace(emailAddr)))
	if err != nil {
		return nil, err
	}
	return s.setActive(ctx, u, active)
}

// setActive activates or deactivates u, revoking its sessions when it is
// deactivated.
func (s *Service) setActive(ctx context.Context, u *tenantry.User, active bool) (*tenantry.User, error) {
	now := sqldb.Now()
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := setActive(ctx, tx, u.ID, active, now); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserUpdated, "", u.ID, map[string]any{
			"user_id": u.ID, "changes": map[string]any{"is_active": active},
		}); err != nil {
			return err
		}
		if !active {
			n, err := revokeUserSessions(ctx, tx, u.ID, "", reasonDeactivated, now)
			if err != nil || n == 0 {
				return err
			}
			return s.revoked(ctx, tx, u.ID, "", reasonDeactivated, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	u.IsActive, u.UpdatedAt = active, now
	return u, nil
}

// Exists reports whether an account has the given email.
func (s *Service) Exists(ctx context.Context, emailAddr string) (bool, error) {
	_, err := findUserByEmail(ctx, s.db, strings.ToLower(strings.TrimSpace(emailAddr)))
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		return false, nil
	}
	return err == nil, err
}

// AdminAccount describes a platform administrator to create or promote.
type AdminAccount struct {
	Email     string
	Password  string
	FirstName string
	LastName  string
}

// EnsurePlatformAdmin makes the account with the given email a platform
// administrator, creating it when no account has that email (the password
// is then required). It returns the account and whether it created it.
func (s *Service) EnsurePlatformAdmin(ctx context.Context, a AdminAccount) (*tenantry.User, bool, error) {
	errs := tenantry.FieldErrors{}
	e := email(errs, a.Email)
	if err := errs.Err(); err != nil {
		return nil, false, err
	}
	u, err := findUserByEmail(ctx, s.db, e)
	created := false
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		if u, err = s.register(ctx, Registration{FirstName: a.FirstName, LastName: a.LastName, Email: e, Password: a.Password}, newAccount{verified: true}); err != nil {
			return nil, false, err
		}
		created = true
	} else if err != nil {
		return nil, false, err
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if err := setPlatformAdmin(ctx, tx, u.ID, sqldb.Now()); err != nil {
			return err
		}
		return s.streams.EmitPlatform(ctx, tx, tenantry.EventUserUpdated, "", u.ID, map[string]any{
			"user_id": u.ID, "changes": map[string]any{"is_platform_admin": true},
		})
	})
	if err != nil {
		return nil, false, fmt.Errorf("make %s a platform administrator: %w", e, err)
	}
	s.streams.Committed()
	u.PlatformAdmin = true
	return u, created, nil
}

// DeleteEndedSessions removes sessions that expired or were revoked before
// cutoff; they can no longer be used.
func (s *Service) DeleteEndedSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	return deleteExpiredSessions(ctx, s.db, cutoff)
}

// DeleteStaleLoginFailures removes the failed-login accounting that no
// longer holds anything as of now: no lock in force, and no failure for a
// lockout's duration. Attempts on addresses nobody registered leave such
// rows too, and without this they would pile up. A count left this long
// without a further failure is forgotten, which allows no more guesses
// than a lock running out does.
func (s *Service) DeleteStaleLoginFailures(ctx context.Context, now time.Time) (int64, error) {
	return deleteStaleFailures(ctx, s.db, now, now.Add(-s.cfg.LockoutDuration))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// CheckPassword checks the password of the caller's account, counting a
// wrong one towards the lockout as a failed login does. An account without
// a password (created through single sign-on) never passes.
func (s *Service) CheckPassword(ctx context.Context, pw string) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	u, err := findUser(ctx, s.db, p.UserID)
	if err != nil {
		return err
	}
	at, err := s.reserve(ctx, u.Email)
	if err != nil {
		return err
	}
	hash, err := passwordHash(ctx, s.db, p.UserID)
	if err != nil {
		return err
	}
	match := false
	if hash != "" {
		if match, _, err = s.hasher.Verify(ctx, pw, hash); err != nil {
			return err
		}
	} else if err := s.hasher.VerifyNone(ctx, pw); err != nil {
		return err
	}
	if !match {
		s.failed(ctx, at, p.UserID)
		return &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"password": {"Password is incorrect"}}}
	}
	return s.succeeded(ctx, s.db, at)
}
