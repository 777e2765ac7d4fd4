package tenantry

import (
	"encoding/json"
	"time"
)

// EventVersion is the version of the event envelope's schema.
const EventVersion = 1

// Event types. Each names the change it describes; the first six are the
// original platform's topics.
const (
	EventTenantCreated      = "tenant.created"
	EventTenantUpdated      = "tenant.updated"
	EventTenantDeleted      = "tenant.deleted"
	EventTenantRestored     = "tenant.restored"
	EventDocumentUploaded   = "document.uploaded"
	EventDocumentUpdated    = "document.updated"
	EventDocumentDeleted    = "document.deleted"
	EventFileProcess        = "file.process"
	EventFileDeleted        = "file.deleted"
	EventAuditLog           = "audit.log"
	EventUserRegistered     = "user.registered"
	EventUserUpdated        = "user.updated"
	EventUserPasswordChange = "user.password_changed"
	EventMemberAdded        = "member.added"
	EventMemberRemoved      = "member.removed"
	EventMemberRoleChanged  = "member.role_changed"
	EventSessionRevoked     = "session.revoked"
	EventSSOConfigChanged   = "sso.config_changed"
	EventSSOLogin           = "sso.login"
	EventSSOLoginRefused    = "sso.login_refused"
	EventSSOUserProvisioned = "sso.user_provisioned"
	EventSSOIdentityLinked  = "sso.identity_linked"
	EventDomainVerified     = "domain.verified"
	EventUserEmailVerified  = "user.email_verified"
	EventUserPasswordReset  = "user.password_reset"
	EventMailQueued         = "mail.queued"
	EventMailSent           = "mail.sent"
	EventMailFailed         = "mail.failed"
	EventInvitationCreated  = "invitation.created"
	EventInvitationResent   = "invitation.resent"
	EventInvitationRevoked  = "invitation.revoked"
	EventInvitationAccepted = "invitation.accepted"
	// EventFileTimestamped and EventFileTimestampFailed report the end of
	// a file's time-stamp request: a verified token kept, or given up.
	EventFileTimestamped     = "file.timestamped"
	EventFileTimestampFailed = "file.timestamp_failed"
)

// Event is the envelope of every event tenantry publishes. EventID is stable
// across redeliveries, so a consumer can act once per event.
type Event struct {
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	Version   int             `json:"version"`
	TenantID  string          `json:"tenant_id,omitempty"`
	UserID    string          `json:"user_id,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}
