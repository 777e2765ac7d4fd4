package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/kafka"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/sso"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/timestamping"
)

// Option changes how New builds an App.
type Option func(*App)

// AsWorker builds an App that does background work: it works jobs, relays
// events and consumes them. In the embedded shape every App does.
func AsWorker() Option { return func(a *App) { a.background = true } }

// endedSessionRetention is how long ended sessions are kept, so that a
// session revoked for refresh-token reuse can still be investigated.
const endedSessionRetention = 7 * 24 * time.Hour

// fileProcessor names the consumer that queues the inspection of new files.
const fileProcessor = "file-processor"

// setupEvents builds the event and job machinery: the outbox streams every
// service writes through, the queue (working jobs only in a background
// process), the relay and the consumers.
func (a *App) setupEvents() error {
	cfg := a.Config
	a.Dispatcher = outbox.NewDispatcher()
	a.Dispatcher.Subscribe(a.handleEvent, tenantry.EventFileProcess)

	if cfg.Kafka() {
		var err error
		kcfg := kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: cfg.KafkaClientID, TopicPrefix: cfg.KafkaTopicPrefix,
			GroupID: cfg.KafkaConsumerGroup, Logger: a.Logger, Metrics: a.kafkaMetrics(), MaxAttempts: cfg.KafkaMaxAttempts,
			SASLMechanism: cfg.KafkaSASLMechanism, SASLUser: cfg.KafkaSASLUsername, SASLPassword: cfg.KafkaSASLPassword,
			TLS: cfg.KafkaTLS}
		if a.Publisher, err = kafka.NewPublisher(kcfg); err != nil {
			return err
		}
		a.closers = append(a.closers, func() error { a.Publisher.Close(); return nil })
		if a.background {
			if a.consumer, err = kafka.NewConsumer(kcfg, []string{tenantry.EventFileProcess}, a.handleEvent); err != nil {
				return err
			}
			a.closers = append(a.closers, func() error { a.consumer.Close(); return nil })
		}
	}

	qcfg := jobs.Config{Logger: a.Logger, MaxWorkers: cfg.JobWorkers, RescueAfter: cfg.JobRescueAfter}
	if a.background {
		qcfg.Workers, qcfg.Periodic = a.workers(), a.periodicJobs()
	}
	var err error
	if a.Jobs, err = jobs.New(a.Engines.Control, qcfg); err != nil {
		return err
	}
	a.Mailer.UseQueue(a.Jobs)

	if a.background {
		var sink outbox.Sink = a.Dispatcher
		if a.Publisher != nil {
			sink = a.Publisher
		}
		host, _ := os.Hostname()
		a.Relay = outbox.NewRelay(a.Engines.Control, a.Tenants, sink, a.notifier, outbox.RelayConfig{
			Owner:        fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8]),
			PollInterval: cfg.RelayPollInterval,
			Logger:       a.Logger,
		})
	}

	a.jobsUI, err = riverui.NewHandler(&riverui.HandlerOpts{Endpoints: a.Jobs.UIEndpoints(), Logger: a.Logger, Prefix: adminJobsPath})
	return err
}

// staleMoveCheck is how often a background process looks for tenant moves
// whose mover died: until one is undone, its tenant may refuse writes.
const staleMoveCheck = 5 * time.Second

// giveUpStaleMoves undoes the moves whose mover died, until ctx ends.
func (a *App) giveUpStaleMoves(ctx context.Context) {
	t := time.NewTicker(staleMoveCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := a.Mover.GiveUpStale(ctx); err != nil && ctx.Err() == nil {
			a.Logger.Warn("looking for tenant moves whose mover died", "error", err)
		} else if n > 0 {
			a.Logger.Warn("undid tenant moves whose mover died", "moves", n)
		}
	}
}

// adminJobsPath is where the jobs dashboard is served, to platform
// administrators only.
const adminJobsPath = "/admin/jobs"

// handleEvent is the consumer of events this process acts on, reached
// through the in-process dispatcher or Kafka. Each event is acted on once:
// the record that it was consumed commits with the job it queues.
func (a *App) handleEvent(ctx context.Context, ev tenantry.Event) error {
	if ev.EventType != tenantry.EventFileProcess {
		return nil
	}
	var data struct {
		FileID    string `json:"file_id"`
		Timestamp bool   `json:"timestamp"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil || data.FileID == "" || ev.TenantID == "" {
		a.Logger.ErrorContext(ctx, "ignoring a malformed file.process event", "event_id", ev.EventID)
		return nil
	}
	return a.Engines.Control.InTx(ctx, func(tx sqldb.Tx) error {
		first, err := outbox.Consume(ctx, tx, fileProcessor, ev.EventID)
		if err != nil || !first {
			return err
		}
		if err := a.Jobs.InsertTx(ctx, tx, jobs.ProcessFile{TenantID: ev.TenantID, FileID: data.FileID}, nil); err != nil {
			return err
		}
		if !data.Timestamp {
			return nil
		}
		return a.Timestamps.OnNewFile(ctx, tx, ev.TenantID, data.FileID)
	})
}

// mailRetention is how long finished mail deliveries stay listed.
const mailRetention = 30 * 24 * time.Hour

func (a *App) workers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, mailer.NewWorker(a.Mailer))
	river.AddWorker(w, &jobs.Func[jobs.MailByAddress]{Do: func(ctx context.Context, j *river.Job[jobs.MailByAddress]) error {
		return a.Accounts.MailByAddress(ctx, j.Args)
	}})
	river.AddWorker(w, &jobs.Func[jobs.ProcessFile]{Do: func(ctx context.Context, j *river.Job[jobs.ProcessFile]) error {
		return a.Documents.ProcessFile(ctx, j.Args.TenantID, j.Args.FileID)
	}})
	// A stamp asks a tenant's authorities in turn, each for up to the
	// request timeout; it must end before it can be taken for lost.
	stampTimeout := min(a.Config.JobRescueAfter, time.Duration(max(len(a.Timestamps.Authorities()), 1))*a.Config.TSATimeout+time.Minute)
	river.AddWorker(w, &timestamping.Worker{Service: a.Timestamps, JobTimeout: stampTimeout})
	river.AddWorker(w, &jobs.Func[jobs.SweepTimestamps]{Do: func(ctx context.Context, _ *river.Job[jobs.SweepTimestamps]) error {
		rep, err := a.Timestamps.Sweep(ctx, timestamping.LostAfter)
		if rep.Requeued+rep.Renewed > 0 {
			a.Logger.InfoContext(ctx, "swept time-stamps", "requeued", rep.Requeued, "renewed", rep.Renewed)
		}
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.ReconcileStorage]{Do: func(ctx context.Context, _ *river.Job[jobs.ReconcileStorage]) error {
		rep, err := a.Reconciler.Run(ctx)
		if err == nil && rep.OrphanFilesDeleted+rep.BlobsDeleted+len(rep.MissingBlobs) > 0 {
			a.Logger.InfoContext(ctx, "reconciled storage", "tenants", rep.Tenants, "orphan_files_deleted", rep.OrphanFilesDeleted,
				"blobs_deleted", rep.BlobsDeleted, "missing_blobs", len(rep.MissingBlobs))
		}
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.CleanupSessions]{Do: func(ctx context.Context, _ *river.Job[jobs.CleanupSessions]) error {
		now := time.Now()
		if _, err := a.Accounts.DeleteEndedSessions(ctx, now.Add(-endedSessionRetention)); err != nil {
			return err
		}
		if _, err := a.Accounts.DeleteStaleLoginFailures(ctx, now); err != nil {
			return err
		}
		if _, err := a.TenantSvc.ExpireMemberships(ctx, now); err != nil {
			return err
		}
		if _, err := a.Accounts.DeleteEndedTokens(ctx, now); err != nil {
			return err
		}
		if _, err := a.Mailer.Prune(ctx, now.Add(-mailRetention)); err != nil {
			return err
		}
		// Single sign-on states and one-time codes past use.
		_, err := a.SSO.DeleteExpiredFlows(ctx)
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.RefreshSSOTokens]{Do: func(ctx context.Context, _ *river.Job[jobs.RefreshSSOTokens]) error {
		n, err := a.SSO.RefreshExpiring(ctx, sso.RefreshAhead)
		if n > 0 {
			a.Logger.InfoContext(ctx, "refreshed stored provider tokens", "identities", n)
		}
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.ReapTenants]{Do: func(ctx context.Context, _ *river.Job[jobs.ReapTenants]) error {
		_, err := a.Provisioner.Reap(ctx, unfinishedTenantAge)
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.PurgeTenants]{Do: func(ctx context.Context, _ *river.Job[jobs.PurgeTenants]) error {
		_, err := a.Lifecycle.PurgeDue(ctx)
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.MaintainKeys]{Do: a.maintainKeys})
	river.AddWorker(w, &jobs.Func[jobs.PruneOutbox]{Do: func(ctx context.Context, _ *river.Job[jobs.PruneOutbox]) error {
		tenants, err := tenant.ListProvisioned(ctx, a.Engines.Control)
		if err != nil {
			return err
		}
		_, err = outbox.Prune(ctx, a.Engines.Control, a.Tenants, tenants, time.Now().Add(-a.Config.EventRetention))
		return err
	}})
	river.AddWorker(w, &jobs.Func[jobs.SweepOutbox]{Do: func(ctx context.Context, _ *river.Job[jobs.SweepOutbox]) error {
		tenants, err := tenant.ListProvisioned(ctx, a.Engines.Control)
		if err != nil {
			return err
		}
		n, err := outbox.Sweep(ctx, a.Engines.Control, a.Tenants, tenants)
		if n > 0 {
			a.Logger.WarnContext(ctx, "outbox sweep found unmarked events", "streams", n)
			a.notifier.Notify()
		}
		return err
	}})
	return w
}

func (a *App) periodicJobs() []*river.PeriodicJob {
	every, sweep := a.Config.MaintenanceInterval, a.Config.RelaySweepInterval
	return []*river.PeriodicJob{
		jobs.Every(every, jobs.ReconcileStorage{}),
		jobs.Every(every, jobs.CleanupSessions{}),
		jobs.Every(every, jobs.ReapTenants{}),
		jobs.Every(every, jobs.PurgeTenants{}),
		jobs.Every(every, jobs.PruneOutbox{}),
		jobs.Every(every, jobs.MaintainKeys{}),
		jobs.Every(sweep, jobs.SweepOutbox{}),
		jobs.Every(sso.RefreshEvery, jobs.RefreshSSOTokens{}),
		jobs.Every(every, jobs.SweepTimestamps{}),
	}
}

// Start starts the App's background machinery: the jobs dashboard's
// caches, and in a background process the job workers, the relay and the
// Kafka consumer. Close stops them.
func (a *App) Start(ctx context.Context) error {
	if a.stop != nil {
		return errors.New("app already started")
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	a.stop = func() {
		cancel()
		stopCtx, done := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
		defer done()
		if err := a.Jobs.Stop(stopCtx); err != nil {
			a.Logger.Warn("stopping the job workers", "error", err)
		}
		wg.Wait()
	}
	if err := a.jobsUI.Start(bg); err != nil {
		cancel()
		return fmt.Errorf("start jobs dashboard: %w", err)
	}
	if !a.background {
		return nil
	}
	if err := a.Jobs.Start(bg); err != nil {
		cancel()
		return fmt.Errorf("start job workers: %w", err)
	}
	wg.Go(func() { a.Relay.Run(bg) })
	if a.Mover != nil {
		wg.Go(func() { a.giveUpStaleMoves(bg) })
	}
	if a.consumer != nil {
		wg.Go(func() {
			if err := a.consumer.Run(bg); err != nil {
				a.Logger.Error("kafka consumer stopped", "error", err)
			}
		})
	}
	return nil
}

// maintainKeys rotates the keys that reached the rotation period, each
// rotation recorded in the platform's audit trail, and moves what older
// versions still protect to the newest.
func (a *App) maintainKeys(ctx context.Context, _ *river.Job[jobs.MaintainKeys]) error {
	if a.Keys == nil {
		return nil
	}
	rep, err := a.Keys.Maintain(ctx, a.Config.KeyRotation, a.SealedValues())
	for _, scope := range rep.Rotated {
		details, _ := json.Marshal(map[string]any{"via": "scheduled rotation", "period": a.Config.KeyRotation.String()})
		if aerr := a.Audit.Append(ctx, &audit.Entry{Chain: audit.PlatformChain, Action: "keys.rotate",
			TargetType: "key_scope", TargetID: scope, Outcome: audit.OutcomeSuccess, Details: details}); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	if len(rep.Rotated)+rep.Rewrapped+rep.Resealed > 0 {
		a.Logger.InfoContext(ctx, "maintained keys", "rotated", len(rep.Rotated), "rewrapped", rep.Rewrapped, "resealed", rep.Resealed)
	}
	return err
}
