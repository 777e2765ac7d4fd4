// Package mailer delivers tenantry's mails through the job queue, never in
// the path of a request: a delivery is a row of the control database and a
// job, written in the transaction of the change that calls for the mail, so
// that the mail exists if and only if the change commits. The job renders
// the mail, asking the part of tenantry the mail belongs to for what only it
// can make (a password-reset link's token, minted just before sending), sends
// it, and records the outcome, with an event and an audit entry. A failure is
// retried with exponential backoff; a permanent refusal (an SMTP 5xx) is
// recorded and not retried; a delivery recorded as sent is never sent again,
// however often its job runs.
package mailer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
)

// Statuses of a delivery.
const (
	StatusQueued   = "queued"
	StatusRetrying = "retrying"
	StatusSent     = "sent"
	// StatusRefused is a permanent refusal by the server: not retried.
	StatusRefused = "refused"
	// StatusFailed is a delivery that failed every attempt.
	StatusFailed = "failed"
	// StatusCancelled is a delivery no longer needed when its turn came
	// (the address was verified meanwhile, the invitation revoked).
	StatusCancelled = "cancelled"
)

// Statuses lists every status.
var Statuses = []string{StatusQueued, StatusRetrying, StatusSent, StatusRefused, StatusFailed, StatusCancelled} //nolint:gochecknoglobals // read-only list

// Audit actions of the job's outcomes.
const (
	ActionSent    = "mail.sent"
	ActionRefused = "mail.refused"
	ActionFailed  = "mail.failed"
)

// Params are what a template needs beyond the recipient, stored with the
// delivery. Never a token.
type Params map[string]string

// Delivery is one mail to one recipient and how its sending went.
type Delivery struct {
	ID   string
	Kind string
	To   string
	// UserID is the account the mail is about, when there is one;
	// TenantID the tenant, for invitations.
	UserID    string
	TenantID  string
	Locale    string
	Params    Params
	Status    string
	Attempts  int
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time
	SentAt    *time.Time
}

// ErrCancel, returned by a Preparer, means the mail is no longer needed:
// the delivery is recorded as cancelled and nothing is sent.
var ErrCancel = errors.New("mail no longer needed")

// Preparer completes a delivery's template data just before it is sent,
// minting its link's token, say. It runs at every attempt: a token minted
// by an attempt that then failed must be replaced, not kept.
type Preparer func(ctx context.Context, d *Delivery, data *mail.Data) error

// Config tunes deliveries.
type Config struct {
	// AppName names the product in mails.
	AppName string
	// AppURL is the customer's front end, the base of the links in
	// mails; when empty, the base URL of the request that queued the
	// mail, else FallbackURL.
	AppURL      string
	FallbackURL string
	// RetryInterval is the wait before the second attempt, doubled at
	// each further one up to MaxRetryInterval.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// MaxAttempts bounds the attempts of one delivery.
	MaxAttempts int
	Logger      *slog.Logger
}

// Mailer queues and delivers mails.
type Mailer struct {
	db        sqldb.DB
	queue     jobs.Queue
	sender    mail.Sender
	templates *mail.Templates
	audit     *audit.Log
	cfg       Config
	logger    *slog.Logger
	prepare   map[string]Preparer
}

// New returns a Mailer over the control database, sending with sender.
// UseQueue must be called before the first Enqueue.
func New(db sqldb.DB, sender mail.Sender, templates *mail.Templates, auditLog *audit.Log, cfg Config) *Mailer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AppName == "" {
		cfg.AppName = "tenantry"
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 10 * time.Second
	}
	if cfg.MaxRetryInterval < cfg.RetryInterval {
		cfg.MaxRetryInterval = max(time.Hour, cfg.RetryInterval)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 15
	}
	cfg.AppURL = strings.TrimRight(cfg.AppURL, "/")
	return &Mailer{db: db, sender: sender, templates: templates, audit: auditLog, cfg: cfg, logger: cfg.Logger, prepare: map[string]Preparer{}}
}

// UseQueue sets the job queue deliveries go through.
func (m *Mailer) UseQueue(q jobs.Queue) { m.queue = q }

// Queue is the job queue deliveries go through.
func (m *Mailer) Queue() jobs.Queue { return m.queue }

// Sender is the transport mails leave through.
func (m *Mailer) Sender() mail.Sender { return m.sender }

// Handle makes p prepare the deliveries of kind.
func (m *Mailer) Handle(kind string, p Preparer) { m.prepare[kind] = p }

// AppURL is the base of links for a mail queued in ctx.
func (m *Mailer) AppURL(ctx context.Context) string {
	if m.cfg.AppURL != "" {
		return m.cfg.AppURL
	}
	if base := tenantry.RequestMetaFromContext(ctx).BaseURL; base != "" {
		return strings.TrimRight(base, "/")
	}
	return strings.TrimRight(m.cfg.FallbackURL, "/")
}

// paramAppURL keeps, with a delivery, the base its links point at.
const paramAppURL = "app_url"

// Enqueue records d as queued and enqueues the job that sends it, in tx, a
// transaction of the control database. It fills in d's id, status and
// times.
func (m *Mailer) Enqueue(ctx context.Context, tx sqldb.Tx, d *Delivery) error {
	if m.queue == nil {
		return errors.New("mailer: no job queue")
	}
	if !mail.ValidLocale(d.Locale) {
		d.Locale = mail.DefaultLocale
	}
	if d.Params == nil {
		d.Params = Params{}
	}
	if _, ok := d.Params[paramAppURL]; !ok {
		d.Params[paramAppURL] = m.AppURL(ctx)
	}
	params, err := json.Marshal(d.Params)
	if err != nil {
		return err
	}
	now := sqldb.Now()
	d.ID, d.Status, d.CreatedAt, d.UpdatedAt = uuid.NewString(), StatusQueued, now, now
	if _, err := tx.Exec(ctx, `
		INSERT INTO mail_deliveries (id, kind, recipient, user_id, tenant_id, locale, params, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		d.ID, d.Kind, d.To, nullable(d.UserID), nullable(d.TenantID), d.Locale, string(params), d.Status, now); err != nil {
		return fmt.Errorf("mailer: record delivery: %w", err)
	}
	if err := outbox.EmitPlatform(ctx, tx, tenantry.EventMailQueued, d.TenantID, d.UserID, m.eventData(d, nil)); err != nil {
		return err
	}
	return m.queue.InsertTx(ctx, tx, jobs.SendMail{DeliveryID: d.ID}, &river.InsertOpts{MaxAttempts: m.cfg.MaxAttempts})
}

func (m *Mailer) eventData(d *Delivery, extra map[string]any) map[string]any {
	data := map[string]any{"delivery_id": d.ID, "kind": d.Kind, "to": d.To, "status": d.Status, "attempts": d.Attempts}
	if d.UserID != "" {
		data["user_id"] = d.UserID
	}
	if d.TenantID != "" {
		data["tenant_id"] = d.TenantID
	}
	for k, v := range extra {
		data[k] = v
	}
	return data
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Backoff is the wait after a failed attempt (attempt counts from 1).
func (m *Mailer) Backoff(attempt int) time.Duration {
	d := m.cfg.RetryInterval
	for i := 1; i < attempt && d < m.cfg.MaxRetryInterval; i++ {
		d *= 2
	}
	return min(d, m.cfg.MaxRetryInterval)
}

// maxErrorLen bounds the error text kept with a delivery.
const maxErrorLen = 1000

// Deliver sends a delivery: the work of its job. final says whether this
// is the last attempt the queue allows. It returns nil when the delivery
// needs no further attempt (sent, refused, cancelled, or failed for good),
// an error wrapped by river.JobCancel for a permanent refusal, and the
// failure otherwise, for the queue to try again.
func (m *Mailer) Deliver(ctx context.Context, id string, final bool) error {
	d, err := m.Get(ctx, id)
	if errors.Is(err, sqldb.ErrNoRows) {
		m.logger.WarnContext(ctx, "mail delivery not found; its job is dropped", "delivery_id", id)
		return nil
	} else if err != nil {
		return err
	}
	switch d.Status {
	case StatusSent, StatusRefused, StatusFailed, StatusCancelled:
		return nil
	}
	appURL := d.Params[paramAppURL]
	data := mail.Data{AppName: m.cfg.AppName, AppURL: appURL, Email: d.To, FirstName: d.Params["first_name"], Time: d.Params["time"]}
	if p := m.prepare[d.Kind]; p != nil {
		if err := p(ctx, d, &data); errors.Is(err, ErrCancel) {
			return m.finish(ctx, d, StatusCancelled, "", ActionFailed, audit.OutcomeFailure)
		} else if err != nil {
			return m.failed(ctx, d, err, final)
		}
	}
	r, err := m.templates.Render(d.Kind, d.Locale, data)
	if err != nil {
		return m.failed(ctx, d, err, final)
	}
	msg := &mail.Message{ID: d.ID, To: d.To, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Kind: d.Kind}
	if err := m.sender.Send(ctx, msg); err != nil {
		if mail.IsPermanent(err) {
			m.logger.WarnContext(ctx, "mail refused permanently; not retried", "delivery_id", d.ID, "kind", d.Kind, "error", err)
			if ferr := m.finish(ctx, d, StatusRefused, err.Error(), ActionRefused, audit.OutcomeFailure); ferr != nil {
				return ferr
			}
			return river.JobCancel(err)
		}
		return m.failed(ctx, d, err, final)
	}
	// The mail is gone: recording it must not fail because the job's
	// context ends now.
	return m.finish(context.WithoutCancel(ctx), d, StatusSent, "", ActionSent, audit.OutcomeSuccess)
}

// failed records a failed attempt: retried, or failed for good on the
// last attempt.
func (m *Mailer) failed(ctx context.Context, d *Delivery, cause error, final bool) error {
	if final {
		m.logger.ErrorContext(ctx, "mail delivery failed at its last attempt", "delivery_id", d.ID, "kind", d.Kind, "error", cause)
		if err := m.finish(context.WithoutCancel(ctx), d, StatusFailed, cause.Error(), ActionFailed, audit.OutcomeError); err != nil {
			return err
		}
		return cause
	}
	m.logger.WarnContext(ctx, "mail delivery failed; it will be retried", "delivery_id", d.ID, "kind", d.Kind,
		"attempt", d.Attempts+1, "error", cause)
	_, err := m.db.Exec(context.WithoutCancel(ctx), `
		UPDATE mail_deliveries SET status = $2, attempts = attempts + 1, last_error = $3, updated_at = $4
		WHERE id = $1 AND status IN ('queued', 'retrying')`, d.ID, StatusRetrying, cut(cause.Error()), sqldb.Now())
	return errors.Join(cause, err)
}

// finish records a delivery's outcome, with its event and audit entry, in
// one transaction.
func (m *Mailer) finish(ctx context.Context, d *Delivery, status, reason, action, outcome string) error {
	now := sqldb.Now()
	var sentAt any
	if status == StatusSent {
		sentAt = now
	}
	d.Status, d.Attempts, d.LastError = status, d.Attempts+1, cut(reason)
	if status == StatusCancelled {
		d.Attempts--
	}
	return m.db.InTx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `
			UPDATE mail_deliveries SET status = $2, attempts = $3, last_error = $4, updated_at = $5, sent_at = $6
			WHERE id = $1 AND status IN ('queued', 'retrying')`, d.ID, status, d.Attempts, d.LastError, now, sentAt)
		if err != nil || n == 0 {
			return err
		}
		// The audit entry first: appending locks the chain's head, then
		// marks the platform stream pending, the order every append takes,
		// so that this and a request's own entry queue rather than
		// deadlock.
		if m.audit != nil && status != StatusCancelled {
			details := map[string]any{"kind": d.Kind, "to": d.To, "attempts": d.Attempts}
			if d.LastError != "" {
				details["error"] = d.LastError
			}
			encoded, _ := json.Marshal(details)
			chain := audit.PlatformChain
			if d.TenantID != "" {
				chain = d.TenantID
			}
			if err := m.audit.AppendTx(ctx, tx, &audit.Entry{Chain: chain, Action: action, ActorID: d.UserID,
				TargetType: "mail_delivery", TargetID: d.ID, Outcome: outcome, Details: encoded}); err != nil {
				return err
			}
		}
		event := tenantry.EventMailSent
		if status != StatusSent {
			event = tenantry.EventMailFailed
		}
		return outbox.EmitPlatform(ctx, tx, event, d.TenantID, d.UserID, m.eventData(d, nil))
	})
}

func cut(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	n := maxErrorLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

const deliveryColumns = `id, kind, recipient, COALESCE(CAST(user_id AS TEXT), ''), COALESCE(CAST(tenant_id AS TEXT), ''), locale, params,
	status, attempts, last_error, created_at, updated_at, sent_at`

func scanDelivery(row sqldb.Row) (*Delivery, error) {
	var d Delivery
	var params string
	if err := row.Scan(&d.ID, &d.Kind, &d.To, &d.UserID, &d.TenantID, &d.Locale, &params, &d.Status, &d.Attempts, &d.LastError,
		&d.CreatedAt, &d.UpdatedAt, &d.SentAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(params), &d.Params); err != nil {
		return nil, fmt.Errorf("mailer: delivery %s: params: %w", d.ID, err)
	}
	return &d, nil
}

// Get reads one delivery.
func (m *Mailer) Get(ctx context.Context, id string) (*Delivery, error) {
	return scanDelivery(m.db.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM mail_deliveries WHERE id = $1`, id))
}

// Filter narrows a listing; zero values filter nothing.
type Filter struct {
	Status string
	Kind   string
	To     string
	// Page counts from 1.
	Page, PerPage int
}

// List returns a page of deliveries, newest first, and how many match.
func (m *Mailer) List(ctx context.Context, f Filter) ([]Delivery, int64, error) {
	where, args := []string{"1 = 1"}, []any{}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.Kind != "" {
		add("kind = $%d", f.Kind)
	}
	if f.To != "" {
		add("recipient = $%d", strings.ToLower(f.To))
	}
	cond := strings.Join(where, " AND ")
	var total int64
	if err := m.db.QueryRow(ctx, `SELECT count(*) FROM mail_deliveries WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if f.PerPage <= 0 {
		f.PerPage = 20
	}
	if f.Page <= 0 {
		f.Page = 1
	}
	args = append(args, f.PerPage, (f.Page-1)*f.PerPage)
	rows, err := m.db.Query(ctx, `SELECT `+deliveryColumns+` FROM mail_deliveries WHERE `+cond+
		fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT $%d OFFSET $%d`, len(args)-1, len(args)), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *d)
	}
	return out, total, rows.Err()
}

// Prune deletes deliveries finished before cutoff.
func (m *Mailer) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	return m.db.Exec(ctx, `DELETE FROM mail_deliveries WHERE updated_at < $1 AND status NOT IN ('queued', 'retrying')`, cutoff)
}

// Worker is the job queue's worker of deliveries.
type Worker struct {
	river.WorkerDefaults[jobs.SendMail]
	m *Mailer
}

// NewWorker returns the worker of m's deliveries.
func NewWorker(m *Mailer) *Worker { return &Worker{m: m} }

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, job *river.Job[jobs.SendMail]) error {
	return w.m.Deliver(ctx, job.Args.DeliveryID, job.Attempt >= job.MaxAttempts)
}

// NextRetry implements river.Worker: exponential backoff from the
// configured interval.
func (w *Worker) NextRetry(job *river.Job[jobs.SendMail]) time.Time {
	return time.Now().Add(w.m.Backoff(job.Attempt))
}

// SendTest sends a test mail to an address at once, through the
// configured transport rather than the queue, so that whoever asks learns
// whether delivery works; it is recorded like any delivery.
func (m *Mailer) SendTest(ctx context.Context, to, locale string) (*Delivery, error) {
	if !mail.ValidAddress(to) {
		return nil, fmt.Errorf("%q is not an email address", to)
	}
	if !mail.ValidLocale(locale) {
		locale = mail.DefaultLocale
	}
	now := sqldb.Now()
	d := &Delivery{ID: uuid.NewString(), Kind: mail.KindTest, To: to, Locale: locale, Status: StatusQueued, CreatedAt: now, UpdatedAt: now,
		Params: Params{paramAppURL: m.AppURL(ctx), "time": now.Format("2006-01-02 15:04:05 MST")}}
	params, _ := json.Marshal(d.Params)
	if _, err := m.db.Exec(ctx, `
		INSERT INTO mail_deliveries (id, kind, recipient, locale, params, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, d.ID, d.Kind, d.To, d.Locale, string(params), d.Status, now); err != nil {
		return nil, err
	}
	err := m.Deliver(ctx, d.ID, true)
	var cancel *river.JobCancelError
	if errors.As(err, &cancel) {
		err = errors.Unwrap(cancel)
	}
	if err != nil {
		return nil, err
	}
	return m.Get(ctx, d.ID)
}
