// Package tenantry holds the domain vocabulary shared by every part of the
// backend: the error type and its codes, roles, and the principal carried in a
// request's context. Engines, stores, services and the HTTP API all speak in
// these terms, so none of them needs to import another to agree on meaning.
package tenantry

import (
	"errors"
	"fmt"
)

// Error codes. They are the stable, machine-readable part of every error
// response; the HTTP layer maps each one to a status in exactly one place.
const (
	EBadRequest           = "BAD_REQUEST"
	EValidation           = "VALIDATION_ERROR"
	EUnauthorized         = "UNAUTHORIZED"
	ETokenExpired         = "TOKEN_EXPIRED"
	ETokenRevoked         = "TOKEN_REVOKED"
	EInvalidCredentials   = "INVALID_CREDENTIALS"
	EForbidden            = "FORBIDDEN"
	EQuotaExceeded        = "QUOTA_EXCEEDED"
	EAccountInactive      = "ACCOUNT_INACTIVE"
	EEmailNotVerified     = "EMAIL_NOT_VERIFIED"
	EInvalidToken         = "INVALID_TOKEN"
	ENotFound             = "NOT_FOUND"
	EMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	EConflict             = "CONFLICT"
	EPayloadTooLarge      = "PAYLOAD_TOO_LARGE"
	EUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	EAccountLocked        = "ACCOUNT_LOCKED"
	ERateLimited          = "RATE_LIMITED"
	ERequestTimeout       = "REQUEST_TIMEOUT"
	EInternal             = "INTERNAL_ERROR"
	EUnavailable          = "SERVICE_UNAVAILABLE"

	// Single sign-on. Each refusal of a sign-in through a provider has a
	// code of its own, so that a client (and the audit trail) can tell
	// what went wrong without reading the message.
	ESSORequired            = "SSO_REQUIRED"
	ESSONotAvailable        = "SSO_NOT_AVAILABLE"
	ESSOStateInvalid        = "SSO_STATE_INVALID"
	ESSOTokenInvalid        = "SSO_TOKEN_INVALID"
	ESSOTenantMismatch      = "SSO_TENANT_MISMATCH"
	ESSODomainNotAllowed    = "SSO_DOMAIN_NOT_ALLOWED"
	ESSOGroupNotAllowed     = "SSO_GROUP_NOT_ALLOWED"
	ESSONotProvisioned      = "SSO_NOT_PROVISIONED"
	ESSOLinkRequired        = "SSO_LINK_REQUIRED"
	ESSOCodeInvalid         = "SSO_CODE_INVALID"
	ESSOProviderError       = "SSO_PROVIDER_ERROR"
	ESSOProviderUnavailable = "SSO_PROVIDER_UNAVAILABLE"
	ESSOGroupsUnresolved    = "SSO_GROUPS_UNRESOLVED"
	ERedirectNotAllowed     = "REDIRECT_NOT_ALLOWED"
)

// Error is the one error type that crosses layer boundaries with a meaning a
// client may see. Anything else reaching the HTTP layer is reported as an
// internal error and its text is logged, never returned.
type Error struct {
	Code    string
	Message string
	// Details is an optional structured payload, for example the per-field
	// messages of a validation failure.
	Details any
	// RetryAfter, when positive, is the number of seconds a client should
	// wait before retrying (rate limits, lockouts).
	RetryAfter int
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("tenantry error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// FieldErrors collects validation messages per field, in the shape the API
// returns as error details.
type FieldErrors map[string][]string

// Add records one message for field.
func (f FieldErrors) Add(field, message string) {
	f[field] = append(f[field], message)
}

// Err returns a VALIDATION_ERROR carrying the collected messages, or nil when
// nothing was collected.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EValidation, Message: "Validation failed", Details: map[string][]string(f)}
}
