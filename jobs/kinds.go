package jobs

// The jobs tenantry runs. Periodic ones carry no arguments: each run covers
// everything due.
type (
	// ReconcileStorage reconciles every tenant's blobs with its file rows.
	ReconcileStorage struct{}
	// CleanupSessions deletes sessions that ended long enough ago.
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
	// ProcessFile inspects a newly stored content.
	ProcessFile struct {
		TenantID string `json:"tenant_id"`
		FileID   string `json:"file_id"`
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
func (ProcessFile) Kind() string { return "process_file" }

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
