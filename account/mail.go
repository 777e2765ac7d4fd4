package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/token"
)

// Lifetimes of the links tenantry mails.
const (
	ResetTokenTTL        = time.Hour
	VerificationTokenTTL = 48 * time.Hour
)

// Purposes of account tokens.
const (
	purposeReset        = "password_reset"
	purposeVerification = "email_verification"
)

// The paths of the customer's front end that links in mails open; the
// front end reads the token from the query and posts it to the API.
const (
	VerifyEmailPath   = "/verify-email"
	ResetPasswordPath = "/reset-password"
)

// errInvalidToken answers every token that is not good, whatever the
// reason: unknown, used, expired, or for an address the account no longer
// has.
var errInvalidToken = tenantry.Errorf(tenantry.EInvalidToken, "Invalid or expired token")

// registerPreparers makes the mailer ask this service for the links of
// verification and reset mails, minted when each is sent.
func (s *Service) registerPreparers() {
	if s.mail == nil {
		return
	}
	s.mail.Handle(mail.KindVerifyEmail, func(ctx context.Context, d *mailer.Delivery, data *mail.Data) error {
		return s.prepareLink(ctx, d, data, purposeVerification, VerificationTokenTTL, VerifyEmailPath)
	})
	s.mail.Handle(mail.KindPasswordReset, func(ctx context.Context, d *mailer.Delivery, data *mail.Data) error {
		return s.prepareLink(ctx, d, data, purposeReset, ResetTokenTTL, ResetPasswordPath)
	})
	s.mail.Handle(mail.KindSecurityAlert, func(_ context.Context, d *mailer.Delivery, data *mail.Data) error {
		data.Alert, data.ClientIP, data.UserAgent, data.Provider = d.Params["alert"], d.Params["client_ip"], d.Params["user_agent"], d.Params["provider"]
		data.Time = d.Params["time"]
		return nil
	})
}

// prepareLink mints the token of a delivery's link, replacing any an
// earlier attempt of the same delivery minted: that one was never mailed.
// A delivery whose account is gone, deactivated, no longer has the address
// or (for verification) was verified meanwhile is cancelled.
func (s *Service) prepareLink(ctx context.Context, d *mailer.Delivery, data *mail.Data, purpose string, ttl time.Duration, path string) error {
	u, err := findUser(ctx, s.db, d.UserID)
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		return mailer.ErrCancel
	} else if err != nil {
		return err
	}
	if !u.IsActive || u.Email != d.To || (purpose == purposeVerification && u.EmailVerified) {
		return mailer.ErrCancel
	}
	raw, hash := token.NewMailed()
	now := sqldb.Now()
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM account_tokens WHERE delivery_id = $1`, d.ID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO account_tokens (token_hash, purpose, user_id, email, delivery_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, hash, purpose, u.ID, u.Email, d.ID, now, now.Add(ttl))
		return err
	})
	if err != nil {
		return err
	}
	data.FirstName = u.FirstName
	data.Link = data.AppURL + path + "?token=" + raw
	return nil
}

// consumeToken uses a token once: it returns the account and address it
// was made for, and marks it used, in tx. Any token that is not good is
// errInvalidToken.
func consumeToken(ctx context.Context, tx sqldb.Tx, raw, purpose string, now time.Time) (userID, email string, err error) {
	if !token.ValidMailed(raw) {
		return "", "", errInvalidToken
	}
	err = tx.QueryRow(ctx, `
		UPDATE account_tokens SET used_at = $3
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING CAST(user_id AS TEXT), email`, token.HashMailed(raw), purpose, now).Scan(&userID, &email)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", "", errInvalidToken
	}
	return userID, email, err
}

// enqueue queues a mail in tx; without a mailer it does nothing.
func (s *Service) enqueue(ctx context.Context, tx sqldb.Tx, d *mailer.Delivery) error {
	if s.mail == nil {
		return nil
	}
	return s.mail.Enqueue(ctx, tx, d)
}

// alert queues a security alert to u in tx.
func (s *Service) alert(ctx context.Context, tx sqldb.Tx, u *tenantry.User, alert string, extra mailer.Params) error {
	meta := tenantry.RequestMetaFromContext(ctx)
	params := mailer.Params{"alert": alert, "first_name": u.FirstName, "client_ip": meta.ClientIP, "user_agent": truncate(meta.UserAgent, 200),
		"time": time.Now().UTC().Format("2006-01-02 15:04 MST")}
	for k, v := range extra {
		params[k] = v
	}
	return s.enqueue(ctx, tx, &mailer.Delivery{Kind: mail.KindSecurityAlert, To: u.Email, UserID: u.ID, Locale: u.Locale, Params: params})
}

// SecurityAlert mails u's owner that alert happened to the account:
// mail.AlertImpersonationStarted or mail.AlertSSOLinked, for the features
// that do those. provider names the identity provider of AlertSSOLinked.
// The mail is queued in tx, with the change it tells of.
func (s *Service) SecurityAlert(ctx context.Context, tx sqldb.Tx, userID, alert, provider string) error {
	u, err := findUser(ctx, tx, userID)
	if err != nil {
		return err
	}
	return s.alert(ctx, tx, u, alert, mailer.Params{"provider": provider})
}

// byAddress queues, without looking anything up, the job that decides
// whether the mail goes out: the request that asked answers the same, in
// the same time, whether or not an account has the address.
func (s *Service) byAddress(ctx context.Context, kind, emailAddr string) error {
	if s.mail == nil {
		return nil
	}
	meta := tenantry.RequestMetaFromContext(ctx)
	return s.mail.Queue().Insert(ctx, jobs.MailByAddress{Mail: kind, Email: emailAddr, AppURL: s.mail.AppURL(ctx),
		ClientIP: meta.ClientIP, UserAgent: truncate(meta.UserAgent, 200), At: time.Now().UTC().Format("2006-01-02 15:04 MST")}, nil)
}

// RequestPasswordReset asks for a reset link to be mailed to an address.
// Whether an account has it is decided in a job; this only checks the
// address's form and queues that job.
func (s *Service) RequestPasswordReset(ctx context.Context, emailAddr string) error {
	errs := tenantry.FieldErrors{}
	e := email(errs, emailAddr)
	if err := errs.Err(); err != nil {
		return err
	}
	audit.Annotate(ctx, "email", e)
	return s.byAddress(ctx, mail.KindPasswordReset, e)
}

// ResendVerification asks for another verification link for an address,
// like RequestPasswordReset.
func (s *Service) ResendVerification(ctx context.Context, emailAddr string) error {
	errs := tenantry.FieldErrors{}
	e := email(errs, emailAddr)
	if err := errs.Err(); err != nil {
		return err
	}
	audit.Annotate(ctx, "email", e)
	return s.byAddress(ctx, mail.KindVerifyEmail, e)
}

// lockedOut queues the lockout alert of an address, registered or not:
// the job tells the two apart.
func (s *Service) lockedOut(ctx context.Context, emailAddr string) {
	if err := s.byAddress(ctx, mail.AlertAccountLocked, emailAddr); err != nil {
		s.logger.WarnContext(ctx, "queueing a lockout alert", "error", err)
	}
}

// MailByAddress is the job RequestPasswordReset, ResendVerification and a
// lockout queue: it mails the account that has the address, when one does
// and the mail applies to it, and does nothing otherwise.
func (s *Service) MailByAddress(ctx context.Context, args jobs.MailByAddress) error {
	u, err := findUserByEmail(ctx, s.db, args.Email)
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	if !u.IsActive {
		return nil
	}
	d := &mailer.Delivery{To: u.Email, UserID: u.ID, Locale: u.Locale, Params: mailer.Params{"first_name": u.FirstName}}
	if args.AppURL != "" {
		d.Params["app_url"] = args.AppURL
	}
	switch args.Mail {
	case mail.KindPasswordReset:
		d.Kind = mail.KindPasswordReset
	case mail.KindVerifyEmail:
		if u.EmailVerified {
			return nil
		}
		d.Kind = mail.KindVerifyEmail
	case mail.AlertAccountLocked:
		d.Kind = mail.KindSecurityAlert
		d.Params["alert"], d.Params["client_ip"], d.Params["user_agent"], d.Params["time"] = mail.AlertAccountLocked, args.ClientIP, args.UserAgent, args.At
	default:
		s.logger.ErrorContext(ctx, "unknown mail asked by address; dropped", "mail", args.Mail)
		return nil
	}
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error { return s.enqueue(ctx, tx, d) })
	if err == nil {
		s.streams.Committed()
	}
	return err
}

// VerifyEmail marks the address of the account a verification token was
// mailed for as verified, and welcomes its owner.
func (s *Service) VerifyEmail(ctx context.Context, raw string) (*tenantry.User, error) {
	now := sqldb.Now()
	var u *tenantry.User
	err := s.db.InTx(ctx, func(tx sqldb.Tx) error {
		userID, addr, err := consumeToken(ctx, tx, raw, purposeVerification, now)
		if err != nil {
			return err
		}
		if ok, err := setEmailVerified(ctx, tx, userID, addr, now); err != nil {
			return err
		} else if !ok {
			// The account changed its address since.
			return errInvalidToken
		}
		if u, err = findUser(ctx, tx, userID); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserEmailVerified, "", u.ID, map[string]any{"user_id": u.ID, "email": u.Email}); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, &mailer.Delivery{Kind: mail.KindWelcome, To: u.Email, UserID: u.ID, Locale: u.Locale,
			Params: mailer.Params{"first_name": u.FirstName}})
	})
	if err != nil {
		return nil, err
	}
	s.streams.Committed()
	audit.SetActor(ctx, u.ID)
	audit.SetTarget(ctx, "user", u.ID)
	return u, nil
}

// ConfirmPasswordReset sets a new password with a token from a reset mail.
// It revokes every session of the account, lifts its lockout, retires its
// other reset links, counts the address as verified (the link proved it
// receives mail there) and mails a security alert. It returns how many
// sessions it revoked.
func (s *Service) ConfirmPasswordReset(ctx context.Context, raw, next string) (int64, error) {
	errs := tenantry.FieldErrors{}
	if raw == "" {
		errs.Add("token", "Token is required")
	}
	newPassword(errs, "new_password", next)
	if err := errs.Err(); err != nil {
		return 0, err
	}
	if !token.ValidMailed(raw) {
		return 0, errInvalidToken
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return 0, err
	}
	now := sqldb.Now()
	var revoked int64
	var userID string
	err = s.db.InTx(ctx, func(tx sqldb.Tx) error {
		id, addr, err := consumeToken(ctx, tx, raw, purposeReset, now)
		if err != nil {
			return err
		}
		u, err := findUser(ctx, tx, id)
		if err != nil {
			return err
		}
		if !u.IsActive || u.Email != addr {
			return errInvalidToken
		}
		userID = u.ID
		if err := setPasswordHash(ctx, tx, u.ID, hash, now); err != nil {
			return err
		}
		if _, err := setEmailVerified(ctx, tx, u.ID, u.Email, now); err != nil {
			return err
		}
		if err := clearFailures(ctx, tx, u.Email, true, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
			u.ID, purposeReset, now); err != nil {
			return err
		}
		if revoked, err = revokeUserSessions(ctx, tx, u.ID, "", reasonPasswordReset, now); err != nil {
			return err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserPasswordReset, "", u.ID, map[string]any{"user_id": u.ID}); err != nil {
			return err
		}
		if revoked > 0 {
			if err := s.revoked(ctx, tx, u.ID, "", reasonPasswordReset, revoked); err != nil {
				return err
			}
		}
		return s.alert(ctx, tx, u, mail.AlertPasswordReset, nil)
	})
	if err != nil {
		return 0, err
	}
	s.streams.Committed()
	audit.SetActor(ctx, userID)
	audit.SetTarget(ctx, "user", userID)
	audit.Annotate(ctx, "revoked_sessions", revoked)
	return revoked, nil
}

// deviceFingerprint names the device of a sign-in: its user agent, and its
// client address when alerts are by address.
func (s *Service) deviceFingerprint(ctx context.Context) string {
	meta := tenantry.RequestMetaFromContext(ctx)
	key := "ua:" + meta.UserAgent
	if s.cfg.SignInAlerts == SignInAlertsAddress {
		key += "\nip:" + meta.ClientIP
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// noteDevice records the device of a sign-in in tx, and queues an alert
// when the account had signed in before, but never from it.
func (s *Service) noteDevice(ctx context.Context, tx sqldb.Tx, u *tenantry.User, now time.Time) error {
	if s.cfg.SignInAlerts == SignInAlertsOff || s.mail == nil {
		return nil
	}
	fp := s.deviceFingerprint(ctx)
	n, err := tx.Exec(ctx, `UPDATE known_devices SET last_seen_at = $3 WHERE user_id = $1 AND fingerprint = $2`, u.ID, fp, now)
	if err != nil || n > 0 {
		return err
	}
	var known int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM known_devices WHERE user_id = $1`, u.ID).Scan(&known); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO known_devices (user_id, fingerprint, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (user_id, fingerprint) DO UPDATE SET last_seen_at = $3`, u.ID, fp, now); err != nil {
		return err
	}
	if known == 0 {
		// The first sign-in of an account is no news to its owner.
		return nil
	}
	audit.Annotate(ctx, "new_device", true)
	return s.alert(ctx, tx, u, mail.AlertNewSignIn, nil)
}

// normalizeLocale returns a supported locale, or "" with a field error.
func normalizeLocale(errs tenantry.FieldErrors, locale string) string {
	l := strings.ToLower(strings.TrimSpace(locale))
	if !mail.ValidLocale(l) {
		errs.Add("locale", "Must be one of: "+strings.Join(mail.Locales, ", ")+".")
	}
	return l
}

// InvitedAccount checks the names and password of someone creating their
// account by accepting an invitation, and hashes the password, before the
// invitation is looked up. The function it returns creates the account,
// with the invitation's address (verified: the invitation's token proves
// it), in the transaction that accepts the invitation, and welcomes its
// owner.
func (s *Service) InvitedAccount(ctx context.Context, r Registration) (func(context.Context, sqldb.Tx, string) (*tenantry.User, error), error) {
	u, hash, err := s.checkAccount(ctx, r, false)
	if err != nil {
		return nil, err
	}
	u.EmailVerified = true
	return func(ctx context.Context, tx sqldb.Tx, addr string) (*tenantry.User, error) {
		now := sqldb.Now()
		u.ID, u.Email, u.CreatedAt, u.UpdatedAt = uuid.NewString(), addr, now, now
		if err := insertUser(ctx, tx, u, hash); err != nil {
			return nil, err
		}
		if err := s.streams.EmitPlatform(ctx, tx, tenantry.EventUserRegistered, "", u.ID, map[string]any{
			"user_id": u.ID, "email": u.Email, "first_name": u.FirstName, "last_name": u.LastName, "invited": true,
		}); err != nil {
			return nil, err
		}
		if err := s.enqueue(ctx, tx, &mailer.Delivery{Kind: mail.KindWelcome, To: u.Email, UserID: u.ID, Locale: u.Locale,
			Params: mailer.Params{"first_name": u.FirstName}}); err != nil {
			return nil, err
		}
		return u, nil
	}, nil
}

// knownDeviceRetention is how long a device unused is still known: a
// sign-in from it after that is news again.
const knownDeviceRetention = 180 * 24 * time.Hour

// DeleteEndedTokens removes the reset and verification tokens that can no
// longer be used (expired, or used, a day ago or more), and forgets the
// devices unused for half a year.
func (s *Service) DeleteEndedTokens(ctx context.Context, now time.Time) (int64, error) {
	cutoff := now.Add(-24 * time.Hour)
	n, err := s.db.Exec(ctx, `DELETE FROM account_tokens WHERE expires_at < $1 OR used_at < $1`, cutoff)
	if err != nil {
		return n, err
	}
	_, err = s.db.Exec(ctx, `DELETE FROM known_devices WHERE last_seen_at < $1`, now.Add(-knownDeviceRetention))
	return n, err
}
