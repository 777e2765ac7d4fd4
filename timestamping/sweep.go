package timestamping

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
	"github.com/tenantry/tenantry/timestamp"
)

// LostAfter is how long a request may stay pending untouched before the
// sweep takes its job for lost and enqueues it again: longer than the
// longest wait between two attempts (an hour, plus jitter).
const LostAfter = 2 * time.Hour

// sweepBatch bounds the requests and renewals one sweep handles per
// tenant; the next sweep goes on.
const sweepBatch = 200

// SweepReport says what a sweep did.
type SweepReport struct {
	Requeued int
	Renewed  int
}

// Sweep enqueues again the requests pending for longer than lostAfter,
// whose jobs were lost (discarded after a worker died on their last
// attempt, say): a request is never left pending for good. And for the
// tenants that have time-stamping on, it takes an archive time-stamp over
// each token whose authority's certificate ends within RenewBefore, so that
// the chain of evidence outlives any one certificate (RFC 4998).
func (s *Service) Sweep(ctx context.Context, lostAfter time.Duration) (SweepReport, error) {
	var rep SweepReport
	tenants, err := tenant.ListProvisioned(ctx, s.control)
	if err != nil {
		return rep, err
	}
	var errs []error
	for _, t := range tenants {
		if !t.IsActive {
			continue
		}
		requeued, renewed, err := s.sweepTenant(ctx, t, lostAfter)
		rep.Requeued += requeued
		rep.Renewed += renewed
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

func (s *Service) sweepTenant(ctx context.Context, t *tenantry.Tenant, lostAfter time.Duration) (int, int, error) {
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(t))
	if err != nil {
		return 0, 0, err
	}
	defer lease.Release()
	db := lease.DB()
	now := sqldb.Now()
	lost, err := stalePending(ctx, db, now.Add(-lostAfter), sweepBatch)
	if err != nil {
		return 0, 0, err
	}
	reqs := make([]jobs.StampFile, len(lost))
	for i, r := range lost {
		reqs[i] = jobs.StampFile{TenantID: t.ID, FileID: r.FileID, RequestID: r.RequestID}
		// Touched, so that the next sweep leaves it to this job.
		if _, err := db.Exec(ctx, `UPDATE file_timestamps SET updated_at = $2 WHERE file_id = $1 AND status = 'pending'`, r.FileID, now); err != nil {
			return 0, 0, err
		}
	}
	if err := s.enqueue(ctx, reqs); err != nil {
		return 0, 0, err
	}
	set, err := findSettings(ctx, s.control, t.ID)
	if err != nil || !set.Enabled || s.cfg.RenewBefore <= 0 {
		return len(reqs), 0, err
	}
	due, err := expiring(ctx, db, now.Add(s.cfg.RenewBefore), sweepBatch)
	if err != nil {
		return len(reqs), 0, err
	}
	renewed := 0
	for _, r := range due {
		ok, err := s.renew(ctx, t, db, set, &r)
		if err != nil {
			return len(reqs), renewed, err
		}
		if ok {
			renewed++
		}
	}
	return len(reqs), renewed, nil
}

// renew takes an archive time-stamp over a file's latest token.
func (s *Service) renew(ctx context.Context, t *tenantry.Tenant, db sqldb.DB, set *Settings, r *Record) (bool, error) {
	toks, err := tokensOf(ctx, db, r.FileID)
	if err != nil || len(toks) == 0 {
		return false, err
	}
	last := toks[len(toks)-1]
	alg, ok := timestamp.ParseAlgorithm(set.Algorithm)
	if !ok {
		alg = timestamp.DefaultAlgorithm
	}
	h := alg.Hash().New()
	h.Write(last.Response)
	tok, name, reasons, _ := s.ask(ctx, set.Authorities, alg, h.Sum(nil))
	if tok == nil {
		s.logger.WarnContext(ctx, "archive time-stamp not taken; the next sweep tries again", "tenant_id", t.ID, "file_id", r.FileID, "reasons", reasons)
		return false, nil
	}
	if !tok.Signer.NotAfter.After(last.SignerNotAfter) {
		// The authorities' certificates end no later: stamping again
		// would extend nothing.
		return false, nil
	}
	now := sqldb.Now()
	st := storedToken(tok, KindArchive, name, now)
	var done bool
	err = s.streams.TenantTx(ctx, t.ID, t.DatabaseName, db, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `UPDATE file_timestamps SET authority = $2, gen_time = $3, serial_number = $4, policy_oid = $5,
			accuracy_micros = $6, signer_not_after = $7, verified_at = $8, updated_at = $8
			WHERE file_id = $1 AND status = 'stamped' AND request_id = $9`,
			r.FileID, name, st.GenTime, st.Serial, st.Policy, tok.Accuracy.Microseconds(), st.SignerNotAfter, now, r.RequestID)
		if err != nil || n != 1 {
			return err
		}
		if err := insertToken(ctx, tx, r.FileID, st); err != nil {
			return err
		}
		done = true
		return outbox.Emit(ctx, tx, tenantry.EventFileTimestamped, t.ID, "", map[string]any{
			"file_id": r.FileID, "kind": KindArchive, "hash_algorithm": alg, "authority": name,
			"gen_time": tok.GenTime, "serial_number": st.Serial, "policy_oid": tok.Policy,
		})
	})
	return done, err
}

// Worker works the StampFile jobs of a queue.
type Worker struct {
	river.WorkerDefaults[jobs.StampFile]
	Service *Service
	// JobTimeout bounds one run; the queue's timeout when zero. It must
	// stay below the time after which a running job is taken for lost.
	JobTimeout time.Duration
}

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, job *river.Job[jobs.StampFile]) error {
	return w.Service.Stamp(ctx, job.Args, job.Attempt, job.MaxAttempts)
}

// NextRetry implements river.Worker: exponential backoff with jitter.
func (w *Worker) NextRetry(job *river.Job[jobs.StampFile]) time.Time {
	return time.Now().Add(w.Service.NextRetry(job.Attempt))
}

// Timeout implements river.Worker.
func (w *Worker) Timeout(*river.Job[jobs.StampFile]) time.Duration { return w.JobTimeout }
