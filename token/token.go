// Package token issues and verifies the JSON Web Tokens that carry a session:
// short-lived access tokens and single-use refresh tokens, both naming the
// server-side session they belong to. The signing algorithm is pinned to
// HS256, so a token cannot choose how it is verified ("none", RS256 with the
// key as a public key, ...).
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Kind distinguishes access tokens from refresh tokens; each is refused where
// the other is expected.
type Kind string

// The two kinds of token.
const (
	Access  Kind = "access"
	Refresh Kind = "refresh"
)

const issuer = "tenantry"

// Errors returned by Parse.
var (
	ErrExpired = errors.New("token expired")
	ErrInvalid = errors.New("token invalid")
)

// Claims are what a verified token says.
type Claims struct {
	UserID    string
	SessionID string
	// ID is the token's own identifier (jti). For refresh tokens it is
	// what the session remembers as the one token allowed next.
	ID        string
	Kind      Kind
	ExpiresAt time.Time
	// ActorID is the platform administrator acting as the user, "" for
	// the user's own tokens (RFC 8693's act claim).
	ActorID string
}

// actor is RFC 8693's act claim: who is really acting, when it is not the
// subject.
type actor struct {
	Subject string `json:"sub"`
}

type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
	Type      Kind   `json:"type"`
	// Fresh is always false; clients of the original platform read it.
	Fresh bool   `json:"fresh"`
	Act   *actor `json:"act,omitempty"`
}

// Issuer signs and verifies tokens with one key.
type Issuer struct {
	key        []byte
	accessTTL  time.Duration
	refreshTTL time.Duration
	parser     *jwt.Parser
	verified   verified
}

// NewIssuer returns an Issuer signing with key.
func NewIssuer(key []byte, accessTTL, refreshTTL time.Duration) *Issuer {
	return &Issuer{
		key:        key,
		accessTTL:  accessTTL,
		refreshTTL: refreshTTL,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithIssuer(issuer),
		),
	}
}

// AccessTTL is how long access tokens live.
func (i *Issuer) AccessTTL() time.Duration { return i.accessTTL }

// RefreshTTL is how long refresh tokens live.
func (i *Issuer) RefreshTTL() time.Duration { return i.refreshTTL }

// Issue signs a token of kind for the user's session, valid from now.
func (i *Issuer) Issue(kind Kind, userID, sessionID, id string, now time.Time) (string, time.Time, error) {
	ttl := i.accessTTL
	if kind == Refresh {
		ttl = i.refreshTTL
	}
	return i.sign(kind, userID, sessionID, id, "", now, now.Add(ttl))
}

// IssueActing signs an access token for the user's session that names
// actorID as the one acting, valid until exp. No refresh token goes with
// it: when it expires, the acting ends.
func (i *Issuer) IssueActing(userID, sessionID, id, actorID string, now, exp time.Time) (string, error) {
	if actorID == "" {
		return "", errors.New("token: an acting token needs its actor")
	}
	signed, _, err := i.sign(Access, userID, sessionID, id, actorID, now, exp)
	return signed, err
}

func (i *Issuer) sign(kind Kind, userID, sessionID, id, actorID string, now, exp time.Time) (string, time.Time, error) {
	claims := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			ID:        id,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		SessionID: sessionID,
		Type:      kind,
	}
	if actorID != "" {
		claims.Act = &actor{Subject: actorID}
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// Parse verifies raw and returns its claims if it is a valid token of kind.
// It returns ErrExpired for a genuine token past its expiry and ErrInvalid for
// anything else that is wrong with it.
func (i *Issuer) Parse(raw string, kind Kind) (Claims, error) {
	if c, ok := i.verified.get(raw); ok {
		if c.Kind != kind {
			return Claims{}, ErrInvalid
		}
		// As the parser decides: a token is expired from its exp second on.
		if !time.Now().Before(c.ExpiresAt) {
			return Claims{}, ErrExpired
		}
		return c, nil
	}
	c, err := i.parse(raw, kind)
	// Refresh tokens are used once each: remembering them would only evict
	// access tokens.
	if err == nil && kind == Access {
		i.verified.put(raw, c)
	}
	return c, err
}

func (i *Issuer) parse(raw string, kind Kind) (Claims, error) {
	var c jwtClaims
	_, err := i.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return i.key, nil })
	if errors.Is(err, jwt.ErrTokenExpired) {
		return Claims{}, ErrExpired
	} else if err != nil {
		return Claims{}, ErrInvalid
	}
	if c.Type != kind || c.Subject == "" || c.SessionID == "" || c.ID == "" || (c.Act != nil && (c.Act.Subject == "" || kind != Access)) {
		return Claims{}, ErrInvalid
	}
	out := Claims{UserID: c.Subject, SessionID: c.SessionID, ID: c.ID, Kind: c.Type, ExpiresAt: c.ExpiresAt.Time}
	if c.Act != nil {
		out.ActorID = c.Act.Subject
	}
	return out, nil
}
