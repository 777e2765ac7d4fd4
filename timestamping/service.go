// Package timestamping gives a tenant's files trusted time-stamps (RFC
// 3161): each tenant chooses whether, from which of the operator's
// authorities and with which hash; each new file is stamped by a job after
// its upload; every answer is verified before it is kept as proof; and the
// proof can be read, checked again, downloaded and handed over as evidence
// that anyone can check with OpenSSL.
package timestamping

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
	"github.com/tenantry/tenantry/timestamp"
)

// Config holds what the operator configured.
type Config struct {
	// Authorities are the configured authorities, by which tenants choose.
	Authorities []*timestamp.Authority
	// MaxAttempts is how many times a stamp is tried while authorities
	// fail transiently; RetryDelay is the first wait between tries,
	// doubled at each, with jitter.
	MaxAttempts int
	RetryDelay  time.Duration
	// RenewBefore is how long before a token's signer certificate
	// expires an archive time-stamp is taken over it.
	RenewBefore time.Duration
	// RatePerSecond is the per-authority rate, for estimates.
	RatePerSecond float64
	// Audit, when set, records each stamp kept or given up in the
	// tenant's audit trail.
	Audit  *audit.Log
	Logger *slog.Logger
}

// Service implements the time-stamping use cases.
type Service struct {
	control sqldb.DB
	tenants *tenant.Service
	dbs     *tenantdb.Manager
	blobs   blob.Store
	streams *outbox.Streams
	client  *timestamp.Client
	queue   jobs.Queue
	cfg     Config
	byName  map[string]*timestamp.Authority
	logger  *slog.Logger
}

// NewService returns a Service. queue may be set later with SetQueue, as
// the queue's workers call the service.
func NewService(control sqldb.DB, tenants *tenant.Service, dbs *tenantdb.Manager, blobs blob.Store, streams *outbox.Streams,
	client *timestamp.Client, cfg Config) *Service {
	if cfg.MaxAttempts < 1 {
		cfg.MaxAttempts = 1
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{control: control, tenants: tenants, dbs: dbs, blobs: blobs, streams: streams, client: client, cfg: cfg,
		byName: map[string]*timestamp.Authority{}, logger: cfg.Logger}
	for _, a := range cfg.Authorities {
		s.byName[a.Name] = a
	}
	return s
}

// SetQueue sets the job queue requests are enqueued on.
func (s *Service) SetQueue(q jobs.Queue) { s.queue = q }

// Authorities lists the configured authorities' names, in order.
func (s *Service) Authorities() []string {
	out := make([]string, len(s.cfg.Authorities))
	for i, a := range s.cfg.Authorities {
		out[i] = a.Name
	}
	return out
}

func principalID(ctx context.Context) string {
	p, _ := tenantry.PrincipalFromContext(ctx)
	return p.UserID
}

// Settings returns a tenant's time-stamping settings. Admins only.
func (s *Service) Settings(ctx context.Context, tenantID string) (*Settings, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, permission.TimestampingManage)
	if err != nil {
		return nil, err
	}
	return findSettings(ctx, s.control, mt.ID)
}

// SettingsUpdate changes a tenant's settings; nil leaves a field alone.
type SettingsUpdate struct {
	Enabled     *bool
	Authorities *[]string
	Algorithm   *string
}

// SetSettings changes a tenant's time-stamping settings. Admins only.
// Turning it on needs at least one authority, each one the operator
// configured.
func (s *Service) SetSettings(ctx context.Context, tenantID string, in SettingsUpdate) (*Settings, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, permission.TimestampingManage)
	if err != nil {
		return nil, err
	}
	before, err := findSettings(ctx, s.control, mt.ID)
	if err != nil {
		return nil, err
	}
	after := *before
	errs := tenantry.FieldErrors{}
	if in.Enabled != nil {
		after.Enabled = *in.Enabled
	}
	if in.Algorithm != nil {
		alg, ok := timestamp.ParseAlgorithm(*in.Algorithm)
		if !ok {
			errs.Add("hash_algorithm", "Must be one of sha256, sha384, sha512.")
		}
		after.Algorithm = string(alg)
	}
	if in.Authorities != nil {
		seen := map[string]bool{}
		after.Authorities = []string{}
		for _, name := range *in.Authorities {
			switch {
			case s.byName[name] == nil:
				errs.Add("authority", fmt.Sprintf("%q is not a configured authority (configured: %s).", name, strings.Join(s.Authorities(), ", ")))
			case seen[name]:
				errs.Add("authority", fmt.Sprintf("%q is named twice.", name))
			default:
				seen[name] = true
				after.Authorities = append(after.Authorities, name)
			}
		}
	}
	if after.Enabled && len(after.Authorities) == 0 && len(errs) == 0 {
		if len(s.cfg.Authorities) == 0 {
			errs.Add("enabled", "No time-stamping authority is configured on this server.")
		} else {
			errs.Add("authority", "Name at least one authority to turn time-stamping on.")
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	after.UpdatedAt = sqldb.Now()
	if err := saveSettings(ctx, s.control, &after, principalID(ctx)); err != nil {
		return nil, err
	}
	audit.Annotate(ctx, "before", settingsAudit(before))
	audit.Annotate(ctx, "after", settingsAudit(&after))
	return &after, nil
}

func settingsAudit(s *Settings) map[string]any {
	return map[string]any{"enabled": s.Enabled, "authority": s.Authorities, "hash_algorithm": s.Algorithm}
}

// Status is a file's time-stamp as the API shows it.
type Status struct {
	Record
	// Chain is how many tokens the file's evidence holds: its own stamp
	// and the archive stamps over it.
	Chain int
}

// Status returns a file's time-stamp status; a file never asked for one
// has status none. Any member may read.
func (s *Service) Status(ctx context.Context, tenantID, fileID string) (*Status, error) {
	_, lease, err := s.open(ctx, tenantID, permission.FilesRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	return s.status(ctx, lease.DB(), fileID)
}

func (s *Service) status(ctx context.Context, q sqldb.Querier, fileID string) (*Status, error) {
	if _, err := findFile(ctx, q, fileID); err != nil {
		return nil, err
	}
	r, err := findRecord(ctx, q, fileID)
	if errors.Is(err, errNoRecord) {
		return &Status{Record: Record{FileID: fileID, Status: None}}, nil
	} else if err != nil {
		return nil, err
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM timestamp_tokens WHERE file_id = $1`, fileID).Scan(&n); err != nil {
		return nil, err
	}
	return &Status{Record: *r, Chain: n}, nil
}

func (s *Service) open(ctx context.Context, tenantID string, perm permission.Permission) (*tenant.MemberTenant, *tenantdb.Lease, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, perm)
	if err != nil {
		return nil, nil, err
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(&mt.Tenant))
	if err != nil {
		return nil, nil, err
	}
	return mt, lease, nil
}

var errDisabled = tenantry.Errorf(tenantry.EBadRequest, "TSA timestamping is not enabled for this tenant")

// Request is the outcome of asking for a file's stamp.
type Request struct {
	// Already is set when the file was stamped and force was not asked:
	// nothing was scheduled.
	Already   *Status
	RequestID string
}

// Create schedules a stamp of one file; force stamps again a file already
// stamped. Admins only, on a tenant that has time-stamping on.
func (s *Service) Create(ctx context.Context, tenantID, fileID string, force bool) (*Request, error) {
	mt, lease, err := s.open(ctx, tenantID, permission.TimestampingManage)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	set, err := findSettings(ctx, s.control, mt.ID)
	if err != nil {
		return nil, err
	}
	if !set.Enabled {
		return nil, errDisabled
	}
	st, err := s.status(ctx, lease.DB(), fileID)
	if err != nil {
		return nil, err
	}
	if st.Status == Stamped && !force {
		return &Request{Already: st}, nil
	}
	id := uuid.NewString()
	if _, err := requestStamp(ctx, lease.DB(), fileID, set.Algorithm, id, true, sqldb.Now()); err != nil {
		return nil, err
	}
	audit.SetTarget(ctx, "file", fileID)
	audit.Annotate(ctx, "force", force)
	return &Request{RequestID: id}, s.enqueue(ctx, []jobs.StampFile{{TenantID: mt.ID, FileID: fileID, RequestID: id}})
}

// BulkFilter selects files as the original's bulk filter does.
type BulkFilter struct {
	NotTimestamped bool
	UploadedBefore *time.Time
	UploadedAfter  *time.Time
}

// MaxBulk is the most files one bulk request schedules.
const MaxBulk = 1000

// BulkResult reports a bulk request.
type BulkResult struct {
	Files int
	// EstimatedDuration is how long the authority's rate needs for them.
	EstimatedDuration time.Duration
}

// Bulk schedules the stamps of the files named, or of those the filter
// selects (at most MaxBulk). Admins only, on a tenant that has
// time-stamping on. Files already stamped are stamped again only when
// named, or selected without not_timestamped: as the original did.
func (s *Service) Bulk(ctx context.Context, tenantID string, fileIDs []string, filter BulkFilter) (*BulkResult, error) {
	if len(fileIDs) > MaxBulk {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Maximum %d file IDs allowed per bulk request", MaxBulk)
	}
	mt, lease, err := s.open(ctx, tenantID, permission.TimestampingManage)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	set, err := findSettings(ctx, s.control, mt.ID)
	if err != nil {
		return nil, err
	}
	if !set.Enabled {
		return nil, errDisabled
	}
	ids, err := selectFiles(ctx, lease.DB(), fileIDs, filter)
	if err != nil {
		return nil, err
	}
	reqs := make([]jobs.StampFile, len(ids))
	now := sqldb.Now()
	err = lease.DB().InTx(ctx, func(tx sqldb.Tx) error {
		for i, id := range ids {
			reqs[i] = jobs.StampFile{TenantID: mt.ID, FileID: id, RequestID: uuid.NewString()}
			if _, err := requestStamp(ctx, tx, id, set.Algorithm, reqs[i].RequestID, true, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.enqueue(ctx, reqs); err != nil {
		return nil, err
	}
	res := &BulkResult{Files: len(ids)}
	if r := s.cfg.RatePerSecond; r > 0 {
		res.EstimatedDuration = time.Duration(float64(len(ids)) / r * float64(time.Second))
	}
	audit.Annotate(ctx, "files", len(ids))
	return res, nil
}

// selectFiles returns the ids of the bulk request's files.
func selectFiles(ctx context.Context, q sqldb.Querier, fileIDs []string, f BulkFilter) ([]string, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(fileIDs) > 0 {
		marks := make([]string, len(fileIDs))
		for i, id := range fileIDs {
			marks[i] = arg(id)
		}
		conds = append(conds, "f.id IN ("+strings.Join(marks, ", ")+")")
	}
	if f.NotTimestamped {
		conds = append(conds, "NOT EXISTS (SELECT 1 FROM file_timestamps t WHERE t.file_id = f.id AND t.status = 'stamped')")
	}
	if f.UploadedBefore != nil {
		conds = append(conds, "f.created_at < "+arg(f.UploadedBefore.UTC()))
	}
	if f.UploadedAfter != nil {
		conds = append(conds, "f.created_at > "+arg(f.UploadedAfter.UTC()))
	}
	query := "SELECT f.id FROM files f"
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := q.Query(ctx, query+" ORDER BY f.created_at, f.id "+sqldb.Limit(MaxBulk), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (s *Service) enqueue(ctx context.Context, reqs []jobs.StampFile) error {
	if len(reqs) == 0 {
		return nil
	}
	if s.queue == nil {
		return errors.New("timestamping: no job queue")
	}
	opts := &river.InsertOpts{MaxAttempts: s.cfg.MaxAttempts}
	return s.control.InTx(ctx, func(tx sqldb.Tx) error {
		for _, r := range reqs {
			if err := s.queue.InsertTx(ctx, tx, r, opts); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForUpload returns, when a tenant has time-stamping on, what records in
// an upload's transaction of the tenant database the request to stamp the
// new content it stores: the file reads pending from the moment its upload
// commits. It returns nil when the tenant has it off.
func (s *Service) ForUpload(ctx context.Context, tenantID string) (func(ctx context.Context, tx sqldb.Tx, fileID string) error, error) {
	set, err := findSettings(ctx, s.control, tenantID)
	if err != nil || !set.Enabled {
		return nil, err
	}
	return func(ctx context.Context, tx sqldb.Tx, fileID string) error {
		_, err := requestStamp(ctx, tx, fileID, set.Algorithm, uploadRequestID(fileID), false, sqldb.Now())
		return err
	}, nil
}

// uploadRequestID is the id of the request an upload makes: derived from
// the file, so that the upload's transaction and its job, and a job
// enqueued again for a redelivered event, all name the same request.
func uploadRequestID(fileID string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("tenantry upload stamp "+fileID)).String()
}

// OnNewFile requests the stamp of a file just stored by an upload made
// while its tenant had time-stamping on: the job is enqueued in tx, a
// transaction of the control database, so that it exists if and only if
// the caller's transaction commits. It is called once per new content
// (deduplicated uploads share one file and one stamp).
func (s *Service) OnNewFile(ctx context.Context, tx sqldb.Tx, tenantID, fileID string) error {
	// A redelivered event enqueues a job for the same request, which
	// acts once.
	return s.queue.InsertTx(ctx, tx, jobs.StampFile{TenantID: tenantID, FileID: fileID, RequestID: uploadRequestID(fileID), Upload: true},
		&river.InsertOpts{MaxAttempts: s.cfg.MaxAttempts})
}

// NextRetry is when a stamp that failed transiently on its attempt-th try
// is tried again: RetryDelay doubled at each attempt, at most an hour, with
// a quarter of jitter either way so that the retries of a bulk request do
// not arrive together.
func (s *Service) NextRetry(attempt int) time.Duration {
	d := s.cfg.RetryDelay
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	jitter := time.Duration((rand.Float64() - 0.5) * 0.5 * float64(d)) //nolint:gosec // jitter, not a secret
	return d + jitter
}

// errRetry makes the job queue try a stamp again later.
type errRetry struct{ reason string }

func (e *errRetry) Error() string { return "timestamping: will retry: " + e.reason }

// Stamp works one request of a file's stamp: it asks the tenant's
// authorities in turn and keeps the first verified token. It does nothing
// for a request already done or replaced by a newer one, or for a file or
// tenant that is gone. When every authority failed, the file is marked
// failed at once if none of the failures can pass (a refusal, an invalid
// answer), and otherwise the error returned makes the job queue retry,
// until the last attempt marks it failed: a file never stays pending once
// its job is over.
func (s *Service) Stamp(ctx context.Context, req jobs.StampFile, attempt, maxAttempts int) error {
	t, err := s.tenants.Active(ctx, req.TenantID)
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(t))
	if err != nil {
		return err
	}
	defer lease.Release()
	db := lease.DB()
	set, err := findSettings(ctx, s.control, t.ID)
	if err != nil {
		return err
	}
	f, err := findFile(ctx, db, req.FileID)
	if errors.Is(err, errFileNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if req.Upload && set.Enabled {
		// The upload recorded its request; one made before it did has
		// its row written here.
		if _, err := requestStamp(ctx, db, f.ID, set.Algorithm, req.RequestID, false, sqldb.Now()); err != nil {
			return err
		}
	}
	rec, err := findRecord(ctx, db, f.ID)
	if errors.Is(err, errNoRecord) {
		return nil
	} else if err != nil {
		return err
	}
	if rec.RequestID != req.RequestID || rec.Status != Pending {
		return nil
	}
	if !set.Enabled {
		return s.fail(ctx, t, db, rec, "timestamping was turned off for the tenant before the file was stamped")
	}
	alg, ok := timestamp.ParseAlgorithm(rec.Algorithm)
	if !ok {
		alg = timestamp.DefaultAlgorithm
	}
	digest, err := s.digest(ctx, f, alg)
	if err != nil {
		return err
	}
	tok, name, reasons, transient := s.ask(ctx, set.Authorities, alg, digest)
	now := sqldb.Now()
	if tok != nil {
		st := storedToken(tok, KindFile, name, now)
		var stored bool
		data := map[string]any{
			"file_id": f.ID, "sha256_hash": f.SHA256, "hash_algorithm": alg, "authority": name,
			"gen_time": tok.GenTime, "serial_number": st.Serial, "policy_oid": tok.Policy,
		}
		err := s.streams.TenantTx(ctx, t.ID, t.DatabaseName, db, func(tx sqldb.Tx) error {
			if stored, err = markStamped(ctx, tx, f.ID, rec.RequestID, st, tok.Accuracy, now); err != nil || !stored {
				return err
			}
			return outbox.Emit(ctx, tx, tenantry.EventFileTimestamped, t.ID, "", data)
		})
		if err == nil && stored {
			s.audit(ctx, t.ID, "file.timestamp.stamped", f.ID, audit.OutcomeSuccess, data)
		}
		return err
	}
	reason := strings.Join(reasons, "; ")
	if transient && attempt < maxAttempts {
		if err := noteAttempt(ctx, db, f.ID, rec.RequestID, reason, now); err != nil {
			return err
		}
		return &errRetry{reason: reason}
	}
	return s.fail(ctx, t, db, rec, reason)
}

// ask tries the authorities in order and returns the first verified
// token, or why each failed and whether any failure may pass.
func (s *Service) ask(ctx context.Context, names []string, alg timestamp.Algorithm, digest []byte) (*timestamp.Token, string, []string, bool) {
	var reasons []string
	transient := false
	for _, name := range names {
		a := s.byName[name]
		if a == nil {
			reasons = append(reasons, name+": no longer configured")
			continue
		}
		tok, err := s.client.Stamp(ctx, a, alg, digest)
		if err == nil {
			return tok, name, nil, false
		}
		if ctx.Err() != nil {
			// Stopped mid-way: the job is retried, nothing was kept.
			return nil, "", []string{name + ": interrupted"}, true
		}
		reasons = append(reasons, name+": "+timestamp.Reason(err))
		transient = transient || timestamp.Transient(err)
		s.logger.WarnContext(ctx, "time-stamping authority failed", "authority", name, "error", err)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no authority chosen")
	}
	return nil, "", reasons, transient
}

func (s *Service) fail(ctx context.Context, t *tenantry.Tenant, db sqldb.DB, rec *Record, reason string) error {
	now := sqldb.Now()
	data := map[string]any{"file_id": rec.FileID, "reason": reason, "attempts": rec.Attempts + 1}
	var failed bool
	err := s.streams.TenantTx(ctx, t.ID, t.DatabaseName, db, func(tx sqldb.Tx) error {
		var err error
		if failed, err = markFailed(ctx, tx, rec.FileID, rec.RequestID, reason, now); err != nil || !failed {
			return err
		}
		return outbox.Emit(ctx, tx, tenantry.EventFileTimestampFailed, t.ID, "", data)
	})
	if err == nil && failed {
		s.audit(ctx, t.ID, "file.timestamp.failed", rec.FileID, audit.OutcomeFailure, data)
	}
	return err
}

// audit records what a job did in the tenant's audit trail. The stamp is
// kept whether or not its record can be written: a failure is logged.
func (s *Service) audit(ctx context.Context, tenantID, action, fileID, outcome string, details map[string]any) {
	if s.cfg.Audit == nil {
		return
	}
	body, err := json.Marshal(details)
	if err == nil {
		err = s.cfg.Audit.Append(ctx, &audit.Entry{Chain: tenantID, Action: action, TargetType: "file", TargetID: fileID,
			Outcome: outcome, Details: body})
	}
	if err != nil {
		s.logger.WarnContext(ctx, "recording a time-stamp in the audit trail", "tenant_id", tenantID, "file_id", fileID, "error", err)
	}
}

// digest is the file's digest with alg: its SHA-256 as recorded, or its
// content read again for another algorithm.
func (s *Service) digest(ctx context.Context, f *fileRow, alg timestamp.Algorithm) ([]byte, error) {
	if alg == timestamp.SHA256 {
		return hex.DecodeString(f.SHA256)
	}
	rc, err := s.blobs.Open(ctx, f.StorageKey, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("timestamping: read file %s: %w", f.ID, err)
	}
	defer rc.Close()
	h := alg.Hash().New()
	if _, err := io.Copy(h, rc); err != nil {
		return nil, fmt.Errorf("timestamping: read file %s: %w", f.ID, err)
	}
	return h.Sum(nil), nil
}

func storedToken(tok *timestamp.Token, kind, authority string, now time.Time) *StoredToken {
	return &StoredToken{
		Kind: kind, Algorithm: string(tok.Algorithm), Imprint: hex.EncodeToString(tok.Digest), Authority: authority,
		GenTime: tok.GenTime.UTC().Truncate(time.Microsecond), Serial: tok.SerialHex(), Policy: tok.Policy,
		SignerNotAfter: tok.Signer.NotAfter.UTC().Truncate(time.Microsecond), Response: tok.Response, CreatedAt: now,
	}
}
