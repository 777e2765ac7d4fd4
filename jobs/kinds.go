package jobs

// The jobs tenantry runs. Periodic ones carry no arguments: each run covers
// everything due.
type (
	// ReconcileStorage reconciles every tenant's blobs with its file rows.
	ReconcileStorage struct{}
	// CleanupSessions deletes sessions that ended long enough ago, stale
	// login failures, and memberships whose role expired.
	CleanupSessions struct{}
	// PruneOutbox deletes events published before the retention period.
	PruneOutbox struct{}
	// SweepOutbox marks every stream found holding unpublished events.
	SweepOutbox struct{}
	// ReapTenants undoes tenant provisioning that never finished.
	ReapTenants struct{}
	// PurgeTenants purges the tenants deleted longer ago than the
	// retention period, and finishes purges that stopped.
	PurgeTenants struct{}
	// MaintainKeys rotates keys that reached the rotation period and
	// moves stored secrets and wrapped keys to the newest versions.
	MaintainKeys struct{}
	// RefreshSSOTokens renews the stored provider tokens of single sign-on
	// identities before they expire.
	RefreshSSOTokens struct{}
	// ProcessFile inspects a newly stored content.
	ProcessFile struct {
		TenantID string `json:"tenant_id"`
		FileID   string `json:"file_id"`
	}
	// SendMail sends one mail delivery, recorded in the control database.
	SendMail struct {
		DeliveryID string `json:"delivery_id"`
	}
	// MailByAddress is a mail asked for by an address alone (a password
	// reset, another verification link, a lockout alert): whether an
	// account has the address is looked up here, in the job, so that the
	// request that asked answers alike, at the same speed, either way.
	MailByAddress struct {
		Mail      string `json:"mail"`
		Email     string `json:"email"`
		AppURL    string `json:"app_url,omitempty"`
		ClientIP  string `json:"client_ip,omitempty"`
		UserAgent string `json:"user_agent,omitempty"`
		At        string `json:"at,omitempty"`
	}
)

// Kind implements river.JobArgs.
func (ReconcileStorage) Kind() string { return "reconcile_storage" }

// Kind implements river.JobArgs.
func (CleanupSessions) Kind() string { return "cleanup_sessions" }

// Kind implements river.JobArgs.
func (PruneOutbox) Kind() string { return "prune_outbox" }

// Kind implements river.JobArgs.
func (SweepOutbox) Kind() string { return "sweep_outbox" }

// Kind implements river.JobArgs.
func (ReapTenants) Kind() string { return "reap_tenants" }

// Kind implements river.JobArgs.
func (PurgeTenants) Kind() string { return "purge_tenants" }

// Kind implements river.JobArgs.
func (MaintainKeys) Kind() string { return "maintain_keys" }

// Kind implements river.JobArgs.
func (RefreshSSOTokens) Kind() string { return "refresh_sso_tokens" }

// Kind implements river.JobArgs.
func (ProcessFile) Kind() string { return "process_file" }

// Kind implements river.JobArgs.
func (SendMail) Kind() string { return "send_mail" }

// Kind implements river.JobArgs.
func (MailByAddress) Kind() string { return "mail_by_address" }

// StampFile obtains a trusted time-stamp for a file, for one request of it.
type StampFile struct {
	TenantID  string `json:"tenant_id"`
	FileID    string `json:"file_id"`
	RequestID string `json:"request_id"`
	// Upload marks the stamp requested by the file's upload, whose job
	// records the request itself.
	Upload bool `json:"upload,omitempty"`
}

// Kind implements river.JobArgs.
func (StampFile) Kind() string { return "stamp_file" }

// SweepTimestamps enqueues again the stamps whose jobs were lost, and
// takes archive time-stamps over tokens whose authority's certificate
// nears its end.
type SweepTimestamps struct{}

// Kind implements river.JobArgs.
func (SweepTimestamps) Kind() string { return "sweep_timestamps" }
