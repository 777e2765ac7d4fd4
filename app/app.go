// Package app assembles a running tenantry from a configuration: it opens the
// engines of the chosen shape, migrates the control database, builds the
// services and the HTTP server, and serves until told to stop. The command
// line and the end-to-end tests both start tenantry through it.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"riverqueue.com/riverui"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/api"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/document"
	"github.com/tenantry/tenantry/events"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/kafka"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/metrics"
	"github.com/tenantry/tenantry/move"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/password"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/ratelimit"
	"github.com/tenantry/tenantry/sealedblob"
	"github.com/tenantry/tenantry/servers"
	"github.com/tenantry/tenantry/smtp"
	"github.com/tenantry/tenantry/sso"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
	"github.com/tenantry/tenantry/timestamp"
	"github.com/tenantry/tenantry/timestamping"
	"github.com/tenantry/tenantry/token"
	"github.com/tenantry/tenantry/vault"
)

// unfinishedTenantAge is how old a pending tenant must be before the reaper
// treats its provisioning as abandoned; provisioning takes seconds.
const unfinishedTenantAge = 10 * time.Minute

// App is one running tenantry process.
type App struct {
	Config      config.Config
	Logger      *slog.Logger
	Engines     *Engines
	Tenants     *tenantdb.Manager
	Provisioner *tenant.Provisioner
	Accounts    *account.Service
	TenantSvc   *tenant.Service
	// Quotas holds the per-tenant limits and their defaults.
	Quotas     *quota.Store
	Blobs      blob.Store
	Documents  *document.Service
	Audit      *audit.Log
	Reconciler *document.Reconciler
	Redis      *redis.Client
	Server     *api.Server
	// Metrics is nil when TENANTRY_METRICS_ADDR is off.
	Metrics *metrics.Metrics
	// Mover moves tenants' databases between servers; nil in the
	// embedded shape.
	Mover *move.Mover
	// Keys encrypts stored secrets; nil in the production shape without
	// TENANTRY_MASTER_KEY.
	Keys *keyring.Keyring
	// Lifecycle restores deleted tenants and purges them.
	Lifecycle *tenant.Lifecycle
	// SSO is single sign-on per tenant.
	SSO *sso.Service
	// Mailer queues mails and, in background processes, delivers them.
	Mailer *mailer.Mailer
	// Timestamps gives files trusted time-stamps (RFC 3161).
	Timestamps *timestamping.Service

	// Streams records events; Dispatcher hands them to this process's
	// consumers when there is no Kafka; Jobs is the job queue.
	Streams    *outbox.Streams
	Dispatcher *outbox.Dispatcher
	Jobs       jobs.Queue
	Publisher  *kafka.Publisher
	Relay      *outbox.Relay

	vault      *vault.Client
	background bool
	notifier   *outbox.Notifier
	consumer   *kafka.Consumer
	jobsUI     *riverui.Handler
	stop       func()

	jwtKey  []byte
	closers []func() error
}

// New builds an App from cfg. Close releases what it opened. The embedded
// shape always does background work (jobs, events) itself; in the
// production shape only worker processes do, see AsWorker.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, version string, opts ...Option) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Logger: logger, background: cfg.Shape() == config.Embedded}
	for _, o := range opts {
		o(a)
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	if cfg.Metrics() {
		a.Metrics = metrics.New(logger)
	}
	a.Engines, err = OpenEngines(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Engines.Close)

	if err := a.loadSecrets(); err != nil {
		return nil, err
	}

	mig, err := a.Engines.ControlMigrator()
	if err != nil {
		return nil, err
	}
	results, err := mig.Up(ctx)
	for _, r := range results {
		for _, m := range r.Migrations {
			logger.Info("applied control migration", "set", r.Set, "migration", m.Name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("migrate control database: %w", err)
	}
	// Before anything connects to a tenant database: a registered
	// server's connection string is sealed.
	if err := a.openKeyring(ctx); err != nil {
		return nil, err
	}
	if a.Keys != nil && a.Engines.Servers != nil {
		a.Engines.Servers.SealWith(a.Keys)
		if err := a.Engines.Servers.SealStored(ctx); err != nil {
			return nil, fmt.Errorf("seal registered servers' connection strings: %w", err)
		}
	}

	a.Tenants, err = tenantdb.NewManager(a.Engines.Tenants, tenantdb.Config{
		MaxConns:    cfg.TenantDBMaxConns,
		ConnsPerDB:  cfg.TenantDBConnsPerTenant,
		IdleTimeout: cfg.TenantDBIdleTimeout,
		RetryAfter:  cfg.TenantDBRetryAfter,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.Tenants.Close)

	a.Provisioner = tenant.NewProvisioner(a.Engines.Control, a.Tenants, a.Engines.Placer(), logger)
	if pg, ok := a.Engines.Tenants.(*postgres.TenantDatabases); ok {
		host, _ := os.Hostname()
		a.Mover = move.New(a.Engines.Control, pg, a.Engines.Servers, a.Tenants, move.Config{
			Owner:      fmt.Sprintf("%s/%d", host, os.Getpid()),
			StaleAfter: cfg.MoveStaleAfter,
			Logger:     logger,
		})
	}
	if n, err := a.Provisioner.Reap(ctx, unfinishedTenantAge); err != nil {
		logger.Warn("reaping unfinished tenants", "error", err)
	} else if n > 0 {
		logger.Info("reaped unfinished tenants", "count", n)
	}

	if cfg.RedisURL != "" {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			// The parse error may echo the URL and its password.
			return nil, errors.New("REDIS_URL is not a valid Redis URL")
		}
		a.Redis = redis.NewClient(opts)
		a.closers = append(a.closers, a.Redis.Close)
	}

	hasher := password.NewHasher(password.Params{
		MemoryKiB:  cfg.PasswordMemoryKiB,
		Iterations: cfg.PasswordIterations,
		Threads:    1,
	}, cfg.PasswordConcurrency)
	tokens := token.NewIssuer(a.jwtKey, time.Duration(cfg.AccessTokenTTL), time.Duration(cfg.RefreshTokenTTL))
	a.notifier = outbox.NewNotifier()
	a.Streams = outbox.NewStreams(a.Engines.Control, a.notifier, logger)
	a.Audit = audit.NewLog(a.Engines.Control, AuditKey(a.jwtKey), logger)
	if err := a.openMailer(); err != nil {
		return nil, err
	}
	a.Accounts = account.NewService(a.Engines.Control, hasher, tokens, a.Streams, account.Config{
		MaxFailedLogins:          cfg.LoginMaxFailures,
		LockoutDuration:          cfg.LoginLockout,
		Metrics:                  a.accountMetrics(),
		Mailer:                   a.Mailer,
		RequireEmailVerification: cfg.RequireEmailVerification,
		SignInAlerts:             cfg.SignInAlerts,
	}, logger)
	a.Quotas = quota.NewStore(a.Engines.Control, quotaDefaults(cfg))
	a.TenantSvc = tenant.NewService(a.Engines.Control, a.Provisioner, a.Streams, a.Quotas, logger, tenant.Options{
		Mailer: a.Mailer, RequireEmailVerification: cfg.RequireEmailVerification,
	})

	if a.Blobs, err = OpenBlobs(ctx, cfg); err != nil {
		return nil, err
	}
	if cfg.EncryptsBlobs() {
		a.Blobs = sealedblob.New(a.Blobs, a.Keys, tenantScopes(a.Engines.Control))
	}

	a.SSO = sso.NewService(a.Engines.Control, a.Keys, a.TenantSvc, a.Accounts, a.Streams, sso.Options{
		AzureAuthority: cfg.SSOAzureAuthority,
		GoogleIssuer:   cfg.SSOGoogleIssuer,
		GraphURL:       cfg.SSOGraphURL,
		DNSServer:      cfg.DNSServer,
		Logger:         logger,
	})
	authorities, err := cfg.Authorities()
	if err != nil {
		return nil, err
	}
	a.Timestamps = timestamping.NewService(a.Engines.Control, a.TenantSvc, a.Tenants, a.Blobs, a.Streams,
		timestamp.NewClient(timestamp.ClientConfig{Timeout: cfg.TSATimeout, RatePerSecond: cfg.TSARate, Observer: a.timestampMetrics()}),
		timestamping.Config{Authorities: authorities, MaxAttempts: cfg.TSAMaxAttempts, RetryDelay: cfg.TSARetryDelay,
			RenewBefore: cfg.TSARenewBefore, RatePerSecond: cfg.TSARate, Audit: a.Audit, Logger: logger})
	a.Documents = document.NewService(a.TenantSvc, a.Tenants, a.Blobs, a.Streams, document.Config{
		MaxUploadBytes: cfg.MaxUploadMB << 20,
		BlobGrace:      cfg.BlobGrace,
		SigningKey:     a.jwtKey,
		Timestamping:   a.Timestamps,
	}, logger)
	a.Reconciler = document.NewReconciler(a.Engines.Control, a.Tenants, a.Blobs, a.Streams, cfg.BlobGrace, logger)
	lifecycle := tenant.LifecycleConfig{Retention: time.Duration(cfg.TenantRetention), Logger: logger}
	if a.Keys != nil {
		lifecycle.Keys = a.Keys
	}
	a.Lifecycle = tenant.NewLifecycle(a.Engines.Control, a.Tenants, a.Blobs, a.Audit, a.Streams, lifecycle)
	if err := a.setupEvents(); err != nil {
		return nil, err
	}
	a.Timestamps.SetQueue(a.Jobs)

	a.Server = api.NewServer(api.Config{
		Version:         version,
		CORSOrigins:     cfg.CORSOrigins,
		TrustedProxies:  cfg.TrustedProxies,
		PublicURL:       cfg.PublicURL,
		MaxUploadBytes:  cfg.MaxUploadMB << 20,
		BodyIdleTimeout: cfg.BodyIdleTimeout,
		Metrics:         a.apiMetrics(),
		Logger:          logger,
		Readiness:       a.readinessChecks(),
		CursorSecret:    a.jwtKey,
	}, api.Services{
		Accounts:           a.Accounts,
		Tenants:            a.TenantSvc,
		Documents:          a.Documents,
		Lifecycle:          a.Lifecycle,
		Audit:              a.Audit,
		Events:             events.NewService(a.TenantSvc, a.Tenants),
		SSO:                a.SSO,
		Timestamps:         a.Timestamps,
		JobsUI:             a.jobsUI,
		LoginLimiter:       a.limiter(cfg.RateLimitLogin, "login"),
		RegisterLimiter:    a.limiter(cfg.RateLimitRegister, "register"),
		MailLimiter:        a.limiter(cfg.RateLimitMail, "mail"),
		MailAddressLimiter: a.limiter(cfg.RateLimitMailPerAddress, "mail_address"),
		Mailer:             a.Mailer,
	})
	if a.Metrics != nil {
		a.registerGauges()
	}
	return a, nil
}

// openMailer builds the mail transport (SMTP when SMTP_HOST is set, .eml
// files under the data directory otherwise), loads the templates, and the
// mailer over them. Links in mails point at TENANTRY_APP_URL, else
// TENANTRY_PUBLIC_URL, else the address the request that queued the mail
// reached.
func (a *App) openMailer() error {
	cfg := a.Config
	templates, err := mail.LoadTemplates(cfg.MailTemplatesDir)
	if err != nil {
		return err
	}
	var sender mail.Sender
	if cfg.SMTP() {
		s, err := smtp.New(smtp.Config{Host: strings.TrimSpace(cfg.SMTPHost), Port: cfg.SMTPPort, Username: cfg.SMTPUsername,
			Password: cfg.SMTPPassword, From: cfg.SMTPFrom, TLS: cfg.SMTPTLSMode()})
		if err != nil {
			return err
		}
		a.closers = append(a.closers, s.Close)
		sender = s
	} else {
		if sender, err = mail.NewDirSender(filepath.Join(cfg.DataDir, "mail"), cfg.SMTPFrom, a.Logger); err != nil {
			return err
		}
		if a.background {
			a.Logger.Info("no SMTP server configured (SMTP_HOST): mails are written as .eml files", "dir", filepath.Join(cfg.DataDir, "mail"))
		}
	}
	appURL := cfg.AppURL
	if appURL == "" {
		appURL = cfg.PublicURL
	}
	fallback := "http://localhost:4999"
	if _, port, err := net.SplitHostPort(cfg.Addr); err == nil && port != "" {
		fallback = "http://localhost:" + port
	}
	a.Mailer = mailer.New(a.Engines.Control, sender, templates, a.Audit, mailer.Config{
		AppName: cfg.AppName, AppURL: appURL, FallbackURL: fallback, RetryInterval: cfg.MailRetryInterval, Logger: a.Logger,
	})
	return nil
}

// limiter returns a per-address limiter shared through Redis when Redis is
// configured, and kept in this process otherwise. The spec was validated
// with the configuration.
func (a *App) limiter(spec, name string) ratelimit.Limiter {
	limit, _ := ratelimit.ParseLimit(spec)
	if a.Redis != nil {
		return ratelimit.NewRedis(a.Redis, limit, a.Config.RedisKeyPrefix+"ratelimit:"+name+":")
	}
	return ratelimit.NewMemory(limit)
}

func (a *App) loadSecrets() error {
	key, err := JWTKey(a.Config)
	a.jwtKey = key
	return err
}

// JWTKey returns the token signing key: JWT_SECRET_KEY, or in the embedded
// shape the key generated once in the data directory.
func JWTKey(cfg config.Config) ([]byte, error) {
	if cfg.JWTSecretKey != "" {
		return []byte(cfg.JWTSecretKey), nil
	}
	// Validate refuses an empty key in the production shape.
	key, err := secretFile(filepath.Join(cfg.DataDir, "secrets"), "jwt_secret", 32)
	return []byte(key), err
}

// openKeyring opens the key service: data keys wrapped by Vault Transit
// when VAULT_ADDR is set; otherwise locally, by TENANTRY_MASTER_KEY or, in
// the embedded shape, by a master key generated once in the data directory.
// In the production shape without either there is none: a key generated on
// one host would leave processes on the others unable to read what it
// encrypted.
func (a *App) openKeyring(ctx context.Context) error {
	cfg := a.Config
	var wrapper keyring.Wrapper
	switch {
	case cfg.VaultAddr != "":
		client, err := vault.Open(ctx, vault.Config{
			Addr: cfg.VaultAddr, Namespace: cfg.VaultNamespace, Token: cfg.VaultToken,
			RoleID: cfg.VaultRoleID, SecretID: cfg.VaultSecretID, TransitMount: cfg.VaultTransitMount,
			Logger: a.Logger,
		})
		if err != nil {
			return err
		}
		a.closers = append(a.closers, client.Close)
		a.vault = client
		wrapper = vault.NewTransit(client)
	case cfg.MasterKey != "":
		master, err := config.DecodeMasterKey(cfg.MasterKey)
		if err != nil {
			return err
		}
		if wrapper, err = keyring.NewLocal(master, a.Engines.Control); err != nil {
			return err
		}
	case cfg.Shape() == config.Embedded:
		text, err := secretFile(filepath.Join(cfg.DataDir, "secrets"), "master_key", 32)
		if err != nil {
			return err
		}
		master, err := hex.DecodeString(text)
		if err != nil || len(master) != 32 {
			return fmt.Errorf("the master key file in %s is damaged", filepath.Join(cfg.DataDir, "secrets"))
		}
		if wrapper, err = keyring.NewLocal(master, a.Engines.Control); err != nil {
			return err
		}
	default:
		return nil
	}
	a.Keys = keyring.New(a.Engines.Control, wrapper, keyring.Options{})
	return nil
}

// SealedValues are the places the product stores sealed secrets, for the
// keyring's rotation and status.
func (a *App) SealedValues() []keyring.SealedValues {
	return append([]keyring.SealedValues{servers.SealedTemplates(a.Engines.Control)}, sso.SealedValues(a.Engines.Control)...)
}

// AuditKey derives the key that signs audit chain heads from the signing
// key, so that no signature made for one purpose is valid for the other.
func AuditKey(jwtKey []byte) []byte {
	mac := hmac.New(sha256.New, jwtKey)
	mac.Write([]byte("tenantry audit chain heads v1"))
	return mac.Sum(nil)
}

func (a *App) readinessChecks() []api.ReadinessCheck {
	checks := []api.ReadinessCheck{
		{Name: "control_database", Check: a.Engines.Control.Ping},
		{Name: "blob_store", Check: a.Blobs.Ping},
	}
	if a.Redis != nil {
		checks = append(checks, api.ReadinessCheck{Name: "redis", Check: func(ctx context.Context) error {
			return a.Redis.Ping(ctx).Err()
		}})
	}
	if a.Publisher != nil {
		checks = append(checks, api.ReadinessCheck{Name: "kafka", Check: a.Publisher.Ping})
	}
	if a.vault != nil {
		checks = append(checks, api.ReadinessCheck{Name: "vault", Check: a.vault.Ping})
	}
	return checks
}

// Close stops what Start started, then releases everything New opened, in
// reverse order.
func (a *App) Close() error {
	if a.stop != nil {
		a.stop()
		a.stop = nil
	}
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Serve starts the App's background machinery and answers HTTP requests on
// ln until ctx is cancelled, then stops accepting connections and lets
// in-flight requests finish, for at most the configured shutdown timeout.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	return Serve(ctx, ln, a.Server, a.Config.ShutdownTimeout, a.Logger)
}

// Serve runs an HTTP server for h on ln until ctx is cancelled, then drains
// in-flight requests for up to drain.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", drain.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// quotaDefaults are the limits of tenants without overrides, storage in
// bytes.
func quotaDefaults(cfg config.Config) quota.Limits {
	l := quota.Limits{Documents: cfg.QuotaDocuments, Members: cfg.QuotaMembers}
	if mb := cfg.QuotaStorageMB; mb != nil {
		bytes := *mb << 20
		l.Storage = &bytes
	}
	return l
}
