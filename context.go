package tenantry

import "context"

// Principal is the authenticated caller of a request.
type Principal struct {
	UserID        string
	SessionID     string
	PlatformAdmin bool
	// SSOTenantID is the tenant through whose single sign-on the session
	// was opened, "" for a session opened with a password. A tenant that
	// enforces single sign-on admits only sessions opened through it.
	SSOTenantID string
	// ImpersonatorID is the platform administrator acting as the user
	// through this session, "" when the user acts themselves. Such a
	// principal is never a platform administrator, and is refused what
	// only the account's owner may do.
	ImpersonatorID string
	// User is the caller's account as read when the request was
	// authenticated, so that answering with it costs no second lookup.
	// Treat it as read-only: the principal is shared by the whole request.
	User *User
}

type principalKey struct{}

// NewContextWithPrincipal returns a copy of ctx carrying p.
func NewContextWithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal stored in ctx, if any.
func PrincipalFromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// RequestMeta describes where a request came from, for sessions and the
// audit trail.
type RequestMeta struct {
	RequestID string
	ClientIP  string
	UserAgent string
	// BaseURL is scheme://host as the client reached the API, the
	// default base of the links tenantry mails.
	BaseURL string
}

type requestMetaKey struct{}

// NewContextWithRequestMeta returns a copy of ctx carrying m.
func NewContextWithRequestMeta(ctx context.Context, m RequestMeta) context.Context {
	return context.WithValue(ctx, requestMetaKey{}, m)
}

// RequestMetaFromContext returns the request metadata stored in ctx; outside
// a request it is empty.
func RequestMetaFromContext(ctx context.Context) RequestMeta {
	m, _ := ctx.Value(requestMetaKey{}).(RequestMeta)
	return m
}
