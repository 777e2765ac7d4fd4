package timestamping

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// Status values of a file's time-stamp; None is a file never asked for one.
const (
	None    = "none"
	Pending = "pending"
	Stamped = "stamped"
	Failed  = "failed"
)

// Record is a file's time-stamp as kept: its status and, once stamped, its
// latest token's description.
type Record struct {
	FileID         string
	Status         string
	Algorithm      string
	Authority      string
	GenTime        time.Time
	Serial         string
	Policy         string
	Accuracy       time.Duration
	SignerNotAfter time.Time
	VerifiedAt     time.Time
	FailureReason  string
	Attempts       int
	RequestID      string
	RequestedAt    time.Time
	UpdatedAt      time.Time
}

// StoredToken is one kept token of a file's chain.
type StoredToken struct {
	Seq            int
	Kind           string
	Algorithm      string
	Imprint        string
	Authority      string
	GenTime        time.Time
	Serial         string
	Policy         string
	SignerNotAfter time.Time
	Response       []byte
	CreatedAt      time.Time
}

// Kinds of tokens.
const (
	KindFile    = "file"
	KindArchive = "archive"
)

func recordColumns(d sqldb.Dialect) string {
	return `file_id, status, hash_algorithm, COALESCE(authority, ''), ` + d.Time("gen_time") + `, COALESCE(serial_number, ''),
		COALESCE(policy_oid, ''), COALESCE(accuracy_micros, 0), ` + d.Time("signer_not_after") + `, ` + d.Time("verified_at") + `,
		COALESCE(failure_reason, ''), attempts, request_id, ` + d.Time("requested_at") + `, ` + d.Time("updated_at")
}

func scanRecord(row sqldb.Row) (*Record, error) {
	var r Record
	var micros int64
	err := row.Scan(&r.FileID, &r.Status, &r.Algorithm, &r.Authority, sqldb.ScanNullTime(&r.GenTime), &r.Serial, &r.Policy, &micros,
		sqldb.ScanNullTime(&r.SignerNotAfter), sqldb.ScanNullTime(&r.VerifiedAt), &r.FailureReason, &r.Attempts, &r.RequestID,
		sqldb.ScanTime(&r.RequestedAt), sqldb.ScanTime(&r.UpdatedAt))
	if err != nil {
		return nil, err
	}
	r.Accuracy = time.Duration(micros) * time.Microsecond
	return &r, nil
}

var errNoRecord = tenantry.Errorf(tenantry.ENotFound, "File has no timestamp")

func findRecord(ctx context.Context, q sqldb.Querier, fileID string) (*Record, error) {
	r, err := scanRecord(q.QueryRow(ctx, `SELECT `+recordColumns(q.Dialect())+` FROM file_timestamps WHERE file_id = $1`, fileID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errNoRecord
	}
	return r, err
}

// requestStamp records a request: the file's row becomes pending under
// requestID. Unless replace, a file that already has a row keeps it, and
// false says so.
func requestStamp(ctx context.Context, q sqldb.Querier, fileID, alg, requestID string, replace bool, now time.Time) (bool, error) {
	query := `INSERT INTO file_timestamps (file_id, status, hash_algorithm, request_id, requested_at, updated_at, attempts)
		VALUES ($1, 'pending', $2, $3, $4, $4, 0) ON CONFLICT (file_id) DO `
	if replace {
		query += `UPDATE SET status = 'pending', hash_algorithm = excluded.hash_algorithm, request_id = excluded.request_id,
			requested_at = excluded.requested_at, updated_at = excluded.updated_at, attempts = 0, failure_reason = NULL`
	} else {
		query += `NOTHING`
	}
	n, err := q.Exec(ctx, query, fileID, alg, requestID, now)
	return n == 1, err
}

// noteAttempt records a failed attempt of a request still pending.
func noteAttempt(ctx context.Context, q sqldb.Querier, fileID, requestID, reason string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE file_timestamps SET attempts = attempts + 1, failure_reason = $3, updated_at = $4
		WHERE file_id = $1 AND request_id = $2 AND status = 'pending'`, fileID, requestID, reason, now)
	return err
}

// markFailed gives a pending request up; false when the row no longer
// names it.
func markFailed(ctx context.Context, q sqldb.Querier, fileID, requestID, reason string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE file_timestamps SET status = 'failed', attempts = attempts + 1, failure_reason = $3, updated_at = $4
		WHERE file_id = $1 AND request_id = $2 AND status = 'pending'`, fileID, requestID, reason, now)
	return n == 1, err
}

// markStamped records a verified token as the file's latest; false when
// the row no longer names the request (another run stored it, or a newer
// request replaced it), in which case nothing is written.
func markStamped(ctx context.Context, q sqldb.Querier, fileID, requestID string, t *StoredToken, accuracy time.Duration, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE file_timestamps SET status = 'stamped', hash_algorithm = $3, authority = $4, gen_time = $5,
		serial_number = $6, policy_oid = $7, accuracy_micros = $8, signer_not_after = $9, verified_at = $10,
		failure_reason = NULL, attempts = attempts + 1, updated_at = $10
		WHERE file_id = $1 AND request_id = $2 AND status = 'pending'`,
		fileID, requestID, t.Algorithm, t.Authority, t.GenTime, t.Serial, t.Policy, accuracy.Microseconds(), t.SignerNotAfter, now)
	if err != nil || n != 1 {
		return false, err
	}
	return true, insertToken(ctx, q, fileID, t)
}

// insertToken appends a token to the file's chain.
func insertToken(ctx context.Context, q sqldb.Querier, fileID string, t *StoredToken) error {
	err := q.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM timestamp_tokens WHERE file_id = $1`, fileID).Scan(&t.Seq)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO timestamp_tokens (id, file_id, seq, kind, hash_algorithm, imprint, authority, gen_time,
		serial_number, policy_oid, signer_not_after, response, created_at) VALUES ($13, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		fileID, t.Seq, t.Kind, t.Algorithm, t.Imprint, t.Authority, t.GenTime, t.Serial, t.Policy, t.SignerNotAfter, t.Response, t.CreatedAt, uuid.NewString())
	return err
}

func tokensOf(ctx context.Context, q sqldb.Querier, fileID string) ([]StoredToken, error) {
	d := q.Dialect()
	rows, err := q.Query(ctx, `SELECT seq, kind, hash_algorithm, imprint, authority, `+d.Time("gen_time")+`, serial_number, policy_oid, `+
		d.Time("signer_not_after")+`, response, `+d.Time("created_at")+` FROM timestamp_tokens WHERE file_id = $1 ORDER BY seq`, fileID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredToken
	for rows.Next() {
		var t StoredToken
		if err := rows.Scan(&t.Seq, &t.Kind, &t.Algorithm, &t.Imprint, &t.Authority, sqldb.ScanTime(&t.GenTime), &t.Serial, &t.Policy,
			sqldb.ScanTime(&t.SignerNotAfter), &t.Response, sqldb.ScanTime(&t.CreatedAt)); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func touchVerified(ctx context.Context, q sqldb.Querier, fileID string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE file_timestamps SET verified_at = $2 WHERE file_id = $1`, fileID, now)
	return err
}

// stalePending lists the requests pending since before cutoff, whose jobs
// may have been lost.
func stalePending(ctx context.Context, q sqldb.Querier, cutoff time.Time, limit int) ([]Record, error) {
	rows, err := q.Query(ctx, `SELECT `+recordColumns(q.Dialect())+` FROM file_timestamps
		WHERE status = 'pending' AND updated_at < $1 ORDER BY updated_at `+sqldb.Limit(limit), cutoff)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// expiring lists the stamped files whose latest token's signer expires
// before cutoff.
func expiring(ctx context.Context, q sqldb.Querier, cutoff time.Time, limit int) ([]Record, error) {
	rows, err := q.Query(ctx, `SELECT `+recordColumns(q.Dialect())+` FROM file_timestamps
		WHERE status = 'stamped' AND signer_not_after < $1 ORDER BY signer_not_after `+sqldb.Limit(limit), cutoff)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// Settings are a tenant's choice of time-stamping.
type Settings struct {
	TenantID    string
	Enabled     bool
	Authorities []string
	Algorithm   string
	UpdatedAt   time.Time
}

func findSettings(ctx context.Context, q sqldb.Querier, tenantID string) (*Settings, error) {
	s := &Settings{TenantID: tenantID, Algorithm: "sha256", Authorities: []string{}}
	var names string
	err := q.QueryRow(ctx, `SELECT enabled, authorities, hash_algorithm, `+q.Dialect().Time("updated_at")+`
		FROM tenant_timestamping WHERE tenant_id = $1`, tenantID).Scan(&s.Enabled, &names, &s.Algorithm, sqldb.ScanTime(&s.UpdatedAt))
	if errors.Is(err, sqldb.ErrNoRows) {
		return s, nil
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(names), &s.Authorities); err != nil {
		return nil, err
	}
	return s, nil
}

func saveSettings(ctx context.Context, q sqldb.Querier, s *Settings, userID string) error {
	names, err := json.Marshal(s.Authorities)
	if err != nil {
		return err
	}
	var by any
	if userID != "" {
		by = userID
	}
	_, err = q.Exec(ctx, `INSERT INTO tenant_timestamping (tenant_id, enabled, authorities, hash_algorithm, updated_at, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET enabled = excluded.enabled,
		authorities = excluded.authorities, hash_algorithm = excluded.hash_algorithm, updated_at = excluded.updated_at,
		updated_by = excluded.updated_by`, s.TenantID, s.Enabled, string(names), s.Algorithm, s.UpdatedAt, by)
	return err
}

// fileRow is what stamping needs of a file.
type fileRow struct {
	ID         string
	SHA256     string
	Size       int64
	StorageKey string
	CreatedAt  time.Time
}

var errFileNotFound = tenantry.Errorf(tenantry.ENotFound, "File not found")

func findFile(ctx context.Context, q sqldb.Querier, id string) (*fileRow, error) {
	var f fileRow
	err := q.QueryRow(ctx, `SELECT id, sha256_hash, file_size, storage_key, `+q.Dialect().Time("created_at")+` FROM files WHERE id = $1`, id).
		Scan(&f.ID, &f.SHA256, &f.Size, &f.StorageKey, sqldb.ScanTime(&f.CreatedAt))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errFileNotFound
	}
	return &f, err
}
