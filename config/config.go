// Package config reads tenantry's configuration from the environment. Names
// follow the original platform where one exists (DATABASE_URL, JWT_*, S3_*,
// ...); tenantry's own settings are prefixed TENANTRY_. Defaults are filled in
// by WithDefaults, and Validate refuses a configuration that would start an
// unsafe or broken server.
package config

import (
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/tenantry/tenantry/ratelimit"
	"github.com/tenantry/tenantry/timestamp"
)

// Shape is which engines the binary runs on.
type Shape string

// The two shapes of one binary.
const (
	// Embedded runs on SQLite files and local disk under the data directory.
	Embedded Shape = "embedded"
	// Production runs on PostgreSQL and the other configured engines.
	Production Shape = "production"
)

// MetricsOff is the TENANTRY_METRICS_ADDR that turns metrics off.
const MetricsOff = "off"

// Metrics reports whether metrics are recorded and served.
func (c Config) Metrics() bool { return c.MetricsAddr != MetricsOff }

// MinJWTKeyBytes is the shortest signing key accepted, the HMAC-SHA256 output
// size.
const MinJWTKeyBytes = 32

// Seconds is a duration written either as whole seconds (as the original's
// JWT_*_EXPIRES variables are) or as a Go duration such as "15m".
type Seconds time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Seconds) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		*s = Seconds(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("%q is neither a number of seconds nor a duration such as 900 or 15m", text)
	}
	*s = Seconds(d)
	return nil
}

// Retention is a period written as a Go duration such as "720h" or as a
// whole number of days such as "30d".
type Retention time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Retention) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	if days, ok := strings.CutSuffix(text, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err == nil && n >= 0 {
			*r = Retention(time.Duration(n) * 24 * time.Hour)
			return nil
		}
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("%q is neither a duration nor a number of days, such as 720h or 30d", text)
	}
	*r = Retention(d)
	return nil
}

// Config is the whole configuration. Fields holding secrets are tagged so
// that they never appear in logs (see Summary).
type Config struct {
	Addr            string        `env:"TENANTRY_ADDR" envDefault:":4999"`
	DataDir         string        `env:"TENANTRY_DATA_DIR" envDefault:"./data"`
	LogLevel        string        `env:"TENANTRY_LOG_LEVEL" envDefault:"info"`
	ShutdownTimeout time.Duration `env:"TENANTRY_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// MetricsAddr is the private listener of /metrics, /health and
	// /ready; "off" serves none and records no metrics. It defaults to
	// loopback so that metrics are never public by accident.
	MetricsAddr string `env:"TENANTRY_METRICS_ADDR" envDefault:"127.0.0.1:9464"`
	// PProf serves net/http/pprof on the metrics listener.
	PProf       bool     `env:"TENANTRY_PPROF"`
	CORSOrigins []string `env:"CORS_ORIGINS" envSeparator:","`

	// DatabaseURL selects the production shape: the PostgreSQL control
	// database.
	DatabaseURL               string `env:"DATABASE_URL"`
	TenantDatabaseURLTemplate string `env:"TENANT_DATABASE_URL_TEMPLATE"`
	ControlDBMaxConns         int    `env:"TENANTRY_CONTROL_DB_MAX_CONNS" envDefault:"10"`
	// TenantDBMaxConns caps connections (PostgreSQL) or open files
	// (SQLite) held for all tenant databases together by one process.
	TenantDBMaxConns       int           `env:"TENANTRY_TENANT_DB_MAX_CONNS"`
	TenantDBConnsPerTenant int           `env:"TENANTRY_TENANT_DB_CONNS_PER_TENANT"`
	TenantDBIdleTimeout    time.Duration `env:"TENANTRY_TENANT_DB_IDLE_TIMEOUT" envDefault:"5m"`
	// TenantDBRetryAfter is how long a tenant database that failed is
	// left alone: its requests answer 503 at once meanwhile.
	TenantDBRetryAfter time.Duration `env:"TENANTRY_TENANT_DB_RETRY_AFTER" envDefault:"5s"`
	// MoveStaleAfter is how long a tenant move may go without its mover
	// renewing its heartbeat before workers take the mover for dead and
	// undo the move.
	MoveStaleAfter time.Duration `env:"TENANTRY_MOVE_STALE_AFTER" envDefault:"15s"`
	// TenantRetention is how long a deleted tenant can be restored; once
	// it has passed, workers purge the tenant.
	TenantRetention Retention `env:"TENANTRY_TENANT_RETENTION" envDefault:"720h"`

	JWTSecretKey string `env:"JWT_SECRET_KEY"`
	// MasterKey wraps the keyring's keys when no key service is
	// configured: 32 bytes, base64 or hex. Without it the embedded shape
	// generates one in the data directory.
	MasterKey string `env:"TENANTRY_MASTER_KEY"`
	// BlobEncryption, "on", seals document content written from then on
	// with its tenant's key; content written before stays readable. It
	// needs a key service: the embedded shape's own master key,
	// TENANTRY_MASTER_KEY or Vault.
	BlobEncryption string `env:"TENANTRY_BLOB_ENCRYPTION" envDefault:"off"`
	// KeyRotation is the age at which the key job makes a new version of
	// a scope's key; 0 rotates only by hand. The job also moves stored
	// secrets and wrapped keys to the newest versions.
	KeyRotation time.Duration `env:"TENANTRY_KEY_ROTATION_PERIOD" envDefault:"2160h"`

	// Vault, when VaultAddr is set, wraps the keyring's keys with
	// Transit; VaultSecretsPath names a KV v2 secret read for the
	// configuration secrets the environment leaves unset.
	VaultAddr         string `env:"VAULT_ADDR"`
	VaultToken        string `env:"VAULT_TOKEN"`
	VaultRoleID       string `env:"VAULT_ROLE_ID"`
	VaultSecretID     string `env:"VAULT_SECRET_ID"`
	VaultNamespace    string `env:"VAULT_NAMESPACE"`
	VaultTransitMount string `env:"VAULT_TRANSIT_MOUNT" envDefault:"transit"`
	VaultSecretsPath  string `env:"VAULT_SECRETS_PATH"`

	// SSOAzureAuthority is Microsoft Entra ID's authority: the public
	// cloud's, or a sovereign cloud's.
	SSOAzureAuthority string `env:"TENANTRY_SSO_AZURE_AUTHORITY" envDefault:"https://login.microsoftonline.com"`
	// SSOGoogleIssuer is Google's issuer; only tests change it.
	SSOGoogleIssuer string `env:"TENANTRY_SSO_GOOGLE_ISSUER" envDefault:"https://accounts.google.com"`
	// SSOGraphURL is Microsoft Graph, which resolves Entra's group
	// overage and answers user-info.
	SSOGraphURL string `env:"TENANTRY_SSO_GRAPH_URL" envDefault:"https://graph.microsoft.com"`
	// DNSServer, "host:port", answers the lookups of domain proofs
	// instead of the system's resolver.
	DNSServer string `env:"TENANTRY_DNS_SERVER"`

	AccessTokenTTL  Seconds `env:"JWT_ACCESS_TOKEN_EXPIRES" envDefault:"900"`
	RefreshTokenTTL Seconds `env:"JWT_REFRESH_TOKEN_EXPIRES" envDefault:"604800"`

	// REDIS_URL, when set, shares rate limits between processes.
	RedisURL string `env:"REDIS_URL"`
	// RedisKeyPrefix starts every key tenantry writes, so that several
	// deployments can share one Redis.
	RedisKeyPrefix string `env:"TENANTRY_REDIS_KEY_PREFIX" envDefault:"tenantry:"`

	LoginMaxFailures   int           `env:"TENANTRY_LOGIN_MAX_FAILURES" envDefault:"5"`
	LoginLockout       time.Duration `env:"TENANTRY_LOGIN_LOCKOUT" envDefault:"15m"`
	RateLimitLogin     string        `env:"TENANTRY_RATE_LIMIT_LOGIN" envDefault:"30/m"`
	RateLimitRegister  string        `env:"TENANTRY_RATE_LIMIT_REGISTER" envDefault:"10/m"`
	TrustedProxies     []string      `env:"TENANTRY_TRUSTED_PROXIES" envSeparator:","`
	PasswordMemoryKiB  uint32        `env:"TENANTRY_PASSWORD_HASH_MEMORY_KIB" envDefault:"19456"`
	PasswordIterations uint32        `env:"TENANTRY_PASSWORD_HASH_ITERATIONS" envDefault:"2"`
	// PasswordConcurrency bounds simultaneous password hashes; zero means
	// one per CPU.
	PasswordConcurrency int `env:"TENANTRY_PASSWORD_HASH_CONCURRENCY" envDefault:"0"`

	// PublicURL is the address clients reach tenantry at, for the download
	// links it signs itself; by default it is taken from each request.
	PublicURL   string `env:"TENANTRY_PUBLIC_URL"`
	MaxUploadMB int64  `env:"TENANTRY_MAX_UPLOAD_MB" envDefault:"100"`
	// BodyIdleTimeout cuts a request body that sends nothing for this
	// long, without limiting a slow upload that keeps moving.
	BodyIdleTimeout time.Duration `env:"TENANTRY_BODY_IDLE_TIMEOUT" envDefault:"60s"`
	BlobGrace       time.Duration `env:"TENANTRY_BLOB_GRACE_PERIOD" envDefault:"1h"`
	// QuotaStorageMB, QuotaDocuments and QuotaMembers are the limits of a
	// tenant without an override of its own; unset is unlimited.
	QuotaStorageMB *int64 `env:"TENANTRY_QUOTA_STORAGE_MB"`
	QuotaDocuments *int64 `env:"TENANTRY_QUOTA_DOCUMENTS"`
	QuotaMembers   *int64 `env:"TENANTRY_QUOTA_MEMBERS"`
	S3EndpointURL  string `env:"S3_ENDPOINT_URL"`
	S3PublicURL    string `env:"S3_PUBLIC_URL"`
	S3AccessKeyID  string `env:"S3_ACCESS_KEY_ID"`
	S3SecretKey    string `env:"S3_SECRET_ACCESS_KEY"`
	// S3Bucket selects S3-compatible storage for blobs; S3_BUCKET_NAME is
	// the original platform's other name for it.
	S3Bucket     string `env:"S3_BUCKET"`
	S3BucketName string `env:"S3_BUCKET_NAME"`
	S3Region     string `env:"S3_REGION" envDefault:"us-east-1"`

	// KafkaBrokers, when set, makes the relay publish events to Kafka and
	// workers consume them there; otherwise events are handled in process.
	KafkaBrokers       []string `env:"KAFKA_BOOTSTRAP_SERVERS" envSeparator:","`
	KafkaTopicPrefix   string   `env:"KAFKA_TOPIC_PREFIX"`
	KafkaClientID      string   `env:"KAFKA_CLIENT_ID" envDefault:"tenantry"`
	KafkaConsumerGroup string   `env:"KAFKA_CONSUMER_GROUP_ID" envDefault:"tenantry-workers"`
	// KafkaSASLMechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with a
	// user name and password authenticates to the brokers.
	KafkaSASLMechanism string `env:"KAFKA_SASL_MECHANISM"`
	KafkaSASLUsername  string `env:"KAFKA_SASL_USERNAME"`
	KafkaSASLPassword  string `env:"KAFKA_SASL_PASSWORD"`
	KafkaTLS           bool   `env:"KAFKA_TLS"`
	// KafkaMaxAttempts is how many times a worker tries an event before
	// writing it to its topic's dead letter topic and going on.
	KafkaMaxAttempts int `env:"TENANTRY_KAFKA_MAX_ATTEMPTS" envDefault:"5"`

	// RelayPollInterval is how often a relay looks for unpublished events
	// written by other processes.
	RelayPollInterval   time.Duration `env:"TENANTRY_RELAY_POLL_INTERVAL" envDefault:"250ms"`
	EventRetention      time.Duration `env:"TENANTRY_EVENT_RETENTION" envDefault:"168h"`
	MaintenanceInterval time.Duration `env:"TENANTRY_MAINTENANCE_INTERVAL" envDefault:"1h"`
	RelaySweepInterval  time.Duration `env:"TENANTRY_RELAY_SWEEP_INTERVAL" envDefault:"5m"`
	JobWorkers          int           `env:"TENANTRY_JOB_WORKERS" envDefault:"10"`

	// SMTPHost, when set, sends mail through that SMTP server (Amazon SES
	// through its SMTP interface included); otherwise each mail is
	// written as an .eml file under the data directory.
	SMTPHost     string `env:"SMTP_HOST"`
	SMTPPort     int    `env:"SMTP_PORT"`
	SMTPUsername string `env:"SMTP_USERNAME"`
	SMTPPassword string `env:"SMTP_PASSWORD"`
	SMTPFrom     string `env:"SMTP_FROM"`
	// SMTPTLS is required (STARTTLS), implicit, opportunistic or none;
	// empty is required, or opportunistic to a loopback host.
	SMTPTLS string `env:"SMTP_TLS"`
	// MailTemplatesDir overrides the embedded mail templates file by file.
	MailTemplatesDir string `env:"TENANTRY_MAIL_TEMPLATES_DIR"`
	// AppURL is the customer's front end, the base of the links in mails;
	// by default the API's public URL.
	AppURL string `env:"TENANTRY_APP_URL"`
	// AppName names the product in mails.
	AppName string `env:"TENANTRY_APP_NAME" envDefault:"tenantry"`
	// RequireEmailVerification keeps accounts out of every tenant until
	// they verified their address, and makes registering an address that
	// has an account answer like a new registration.
	RequireEmailVerification bool `env:"TENANTRY_REQUIRE_EMAIL_VERIFICATION"`
	// MailRetryInterval is the wait before a failed mail's second attempt,
	// doubled at each further one, up to an hour.
	MailRetryInterval time.Duration `env:"TENANTRY_MAIL_RETRY_INTERVAL" envDefault:"10s"`
	// RateLimitMail limits password-reset and verification requests per
	// client address; RateLimitMailPerAddress per email address.
	RateLimitMail           string `env:"TENANTRY_RATE_LIMIT_MAIL" envDefault:"10/m"`
	RateLimitMailPerAddress string `env:"TENANTRY_RATE_LIMIT_MAIL_PER_ADDRESS" envDefault:"5/h"`
	// SignInAlerts mails an account's owner when it is signed in to from
	// a new device (device), a new device or client address (address),
	// or never (off).
	SignInAlerts string `env:"TENANTRY_SIGNIN_ALERTS" envDefault:"device"`
	// JobRescueAfter is how long a job may stay running before it is
	// taken for the job of a process that died and worked again. It must
	// exceed the longest job: a time-stamp asks each of a tenant's
	// authorities in turn, each for up to TENANTRY_TSA_TIMEOUT.
	JobRescueAfter time.Duration `env:"TENANTRY_JOB_RESCUE_AFTER" envDefault:"1h"`

	// TSAAuthorities are the time-stamping authorities tenants may
	// choose: a JSON array of {"name", "url", "roots_file" or
	// "roots_pem", "policy_oid", "username", "password"}.
	// DigiCertTSAURL, the original's variable, adds one named digicert.
	TSAAuthorities string `env:"TENANTRY_TSA_AUTHORITIES"`
	DigiCertTSAURL string `env:"DIGICERT_TSA_URL"`
	// TSARate is how many requests per second each process sends to one
	// authority at most; 0 is unlimited.
	TSARate float64 `env:"TENANTRY_TSA_RATE" envDefault:"10"`
	// TSATimeout bounds one request to an authority.
	TSATimeout time.Duration `env:"TENANTRY_TSA_TIMEOUT" envDefault:"30s"`
	// TSAMaxAttempts is how many times a stamp is tried while authorities
	// are unreachable or failing before the file is marked failed;
	// TSARetryDelay is the first wait between attempts, doubled at each
	// one, with jitter.
	TSAMaxAttempts int           `env:"TENANTRY_TSA_MAX_ATTEMPTS" envDefault:"6"`
	TSARetryDelay  time.Duration `env:"TENANTRY_TSA_RETRY_DELAY" envDefault:"30s"`
	// TSARenewBefore is how long before the certificate of a token's
	// authority expires the token is stamped again by an archive
	// time-stamp.
	TSARenewBefore time.Duration `env:"TENANTRY_TSA_RENEW_BEFORE" envDefault:"2160h"`
}

// SMTP reports whether mail goes to an SMTP server.
func (c Config) SMTP() bool { return strings.TrimSpace(c.SMTPHost) != "" }

// SMTPTLSMode is SMTP_TLS, or its default for the host.
func (c Config) SMTPTLSMode() string {
	if c.SMTPTLS != "" {
		return strings.ToLower(c.SMTPTLS)
	}
	if isLoopback(c.SMTPHost) {
		return "opportunistic"
	}
	return "required"
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()

}

// Authorities returns the configured time-stamping authorities, in the
// order configured.
func (c Config) Authorities() ([]*timestamp.Authority, error) {
	return timestamp.ParseAuthorities(c.TSAAuthorities, c.DigiCertTSAURL)
}

// Kafka reports whether events go through Kafka.
func (c Config) Kafka() bool {
	for _, b := range c.KafkaBrokers {
		if strings.TrimSpace(b) != "" {
			return true
		}
	}
	return false
}

// Bucket is the S3 bucket blobs go to, or "" for local disk.
func (c Config) Bucket() string {
	if c.S3Bucket != "" {
		return c.S3Bucket
	}
	return c.S3BucketName
}

// FromEnv reads the configuration from the process environment.
func FromEnv() (Config, error) {
	return Parse(nil)
}

// Load reads the configuration like Parse and validates it, reporting every
// problem at once, values that do not parse and values that are not
// allowed, each once, as an *Error.
func Load(environ map[string]string) (Config, error) {
	c, err := Parse(environ)
	var parseErr *Error
	if err != nil && !errors.As(err, &parseErr) {
		return c, err
	}
	return c, joinErrors(parseErr, c.Validate())
}

// Parse reads the configuration from environ ("KEY=value" entries), or from
// the process environment when environ is nil. A value that does not parse
// is reported as an *Error naming its variable; the configuration returned
// with it holds that variable's default instead, so that Validate reports
// only the other problems.
func Parse(environ map[string]string) (Config, error) {
	if environ == nil {
		environ = env.ToMap(os.Environ())
	}
	c, err := parse(environ)
	var agg env.AggregateError
	if err == nil || !errors.As(err, &agg) {
		return c, err
	}
	var (
		problems []string
		failed   = map[string]bool{}
	)
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) || envName(pe.Name) == "" {
			return c, fmt.Errorf("configuration: %w", err)
		}
		name := envName(pe.Name)
		problems = append(problems, parseProblem(name, environ[name], pe))
		failed[name] = true
	}
	rest := make(map[string]string, len(environ))
	for k, v := range environ {
		if !failed[k] {
			rest[k] = v
		}
	}
	c, err = parse(rest)
	if err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	return c, &Error{Problems: problems}
}

func parse(environ map[string]string) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return c, err
	}
	c.WithDefaults()
	return c, nil
}

// envName returns the variable a field of Config is read from.
func envName(field string) string {
	f, ok := reflect.TypeFor[Config]().FieldByName(field)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return name
}

// parseProblem says why value, read from the variable name, did not parse,
// in the variable's terms rather than the Go field's.
func parseProblem(name, value string, pe env.ParseError) string {
	if pe.Type == reflect.TypeFor[time.Duration]() {
		return fmt.Sprintf("%s: %q is not a duration such as 30s or 5m", name, value)
	}
	if reflect.PointerTo(pe.Type).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		// Our own types say what they accept.
		return name + ": " + pe.Err.Error()
	}
	if errors.Is(pe.Err, strconv.ErrRange) {
		return fmt.Sprintf("%s: %q is too large", name, value)
	}
	kind := pe.Type.Kind()
	if kind == reflect.Pointer {
		// An optional setting, unset when absent.
		kind = pe.Type.Elem().Kind()
	}
	switch kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("%s: %q is not a whole number", name, value)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("%s: %q is not a whole number of 0 or more", name, value)
	case reflect.Float32, reflect.Float64:
		return fmt.Sprintf("%s: %q is not a number", name, value)
	case reflect.Bool:
		return fmt.Sprintf("%s: %q is not true or false", name, value)
	}
	return fmt.Sprintf("%s: %q: %v", name, value, pe.Err)
}

// Error is a configuration that cannot be used, with every problem found,
// each naming its variable.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0]
	}
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// joinErrors merges the problems of configuration errors, either of which
// may be nil.
func joinErrors(a *Error, b error) error {
	if b == nil {
		if a == nil {
			return nil
		}
		return a
	}
	var be *Error
	if a == nil {
		return b
	}
	if !errors.As(b, &be) {
		return errors.Join(a, b)
	}
	return &Error{Problems: append(slices.Clip(a.Problems), be.Problems...)}
}

// Shape reports which engines this configuration selects.
func (c Config) Shape() Shape {
	if c.DatabaseURL != "" {
		return Production
	}
	return Embedded
}

// WithDefaults fills in the defaults that depend on the shape.
func (c *Config) WithDefaults() {
	if c.Shape() == Production {
		// A PostgreSQL server with max_connections=100 keeps room for the
		// control pool, the job queue, a second process and administrators.
		if c.TenantDBConnsPerTenant == 0 {
			c.TenantDBConnsPerTenant = 2
		}
		if c.TenantDBMaxConns == 0 {
			c.TenantDBMaxConns = 40
		}
	} else {
		// A SQLite tenant database has one writer; two readers beside it
		// let a busy tenant's reads use both cores of a small machine.
		// The cap keeps 256 such databases open.
		if c.TenantDBConnsPerTenant == 0 {
			c.TenantDBConnsPerTenant = 3
		}
		if c.TenantDBMaxConns == 0 {
			c.TenantDBMaxConns = 768
		}
	}
}

// secureURL reports whether raw is an absolute https URL, or http on a
// loopback address, without credentials, query or fragment.
func secureURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback()))
}

// Validate reports every problem that must stop the server from starting,
// as an *Error.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.JWTSecretKey == "" && c.Shape() == Production:
		errs = append(errs, fmt.Errorf("JWT_SECRET_KEY must be set in the production shape, to at least %d bytes", MinJWTKeyBytes))
	case c.JWTSecretKey != "" && len(c.JWTSecretKey) < MinJWTKeyBytes:
		errs = append(errs, fmt.Errorf("JWT_SECRET_KEY must be at least %d bytes", MinJWTKeyBytes))
	}
	if c.VaultAddr != "" && c.VaultToken == "" && (c.VaultRoleID == "" || c.VaultSecretID == "") {
		errs = append(errs, errors.New("VAULT_ADDR is set: set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID for AppRole"))
	}
	if c.VaultSecretsPath != "" && c.VaultAddr == "" {
		errs = append(errs, errors.New("VAULT_SECRETS_PATH needs VAULT_ADDR"))
	}
	switch strings.ToUpper(c.KafkaSASLMechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("KAFKA_SASL_MECHANISM: %q is not one of PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.KafkaSASLMechanism))
	}
	switch strings.ToLower(c.BlobEncryption) {
	case "off", "":
	case "on":
		if c.Shape() == Production && c.VaultAddr == "" && c.MasterKey == "" {
			errs = append(errs, errors.New("TENANTRY_BLOB_ENCRYPTION=on needs a key service: set VAULT_ADDR or TENANTRY_MASTER_KEY"))
		}
	default:
		errs = append(errs, fmt.Errorf("TENANTRY_BLOB_ENCRYPTION: %q is not on or off", c.BlobEncryption))
	}
	if c.MasterKey != "" {
		if _, err := DecodeMasterKey(c.MasterKey); err != nil {
			errs = append(errs, err)
		}
	}
	for name, v := range map[string]string{"TENANTRY_SSO_AZURE_AUTHORITY": c.SSOAzureAuthority,
		"TENANTRY_SSO_GOOGLE_ISSUER": c.SSOGoogleIssuer, "TENANTRY_SSO_GRAPH_URL": c.SSOGraphURL} {
		if !secureURL(v) {
			errs = append(errs, fmt.Errorf("%s: %q is not an https URL (plain http only on a loopback address)", name, v))
		}
	}
	if c.DNSServer != "" {
		if _, _, err := net.SplitHostPort(c.DNSServer); err != nil {
			errs = append(errs, fmt.Errorf("TENANTRY_DNS_SERVER: %q is not host:port", c.DNSServer))
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("TENANTRY_LOG_LEVEL: %q is not one of debug, info, warn or error", c.LogLevel))
	}
	if c.TenantDatabaseURLTemplate != "" && !strings.Contains(c.TenantDatabaseURLTemplate, "{database_name}") {
		errs = append(errs, errors.New("TENANT_DATABASE_URL_TEMPLATE must contain {database_name}"))
	}
	if c.TenantDBConnsPerTenant < 1 || c.TenantDBMaxConns < c.TenantDBConnsPerTenant {
		errs = append(errs, errors.New("TENANTRY_TENANT_DB_MAX_CONNS must be at least TENANTRY_TENANT_DB_CONNS_PER_TENANT, itself at least 1"))
	}
	if c.MetricsAddr != MetricsOff {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("TENANTRY_METRICS_ADDR: %q is neither host:port nor %q", c.MetricsAddr, MetricsOff))
		}
	} else if c.PProf {
		errs = append(errs, errors.New("TENANTRY_PPROF needs TENANTRY_METRICS_ADDR: the profiler is served on the metrics listener"))
	}
	if c.MoveStaleAfter < time.Second {
		errs = append(errs, errors.New("TENANTRY_MOVE_STALE_AFTER must be at least 1s"))
	}
	if c.TenantRetention < 0 {
		errs = append(errs, errors.New("TENANTRY_TENANT_RETENTION must not be negative"))
	}
	if c.TenantDBRetryAfter < time.Second {
		errs = append(errs, errors.New("TENANTRY_TENANT_DB_RETRY_AFTER must be at least 1s"))
	}
	if c.ControlDBMaxConns < 2 {
		errs = append(errs, errors.New("TENANTRY_CONTROL_DB_MAX_CONNS must be at least 2"))
	}
	if c.AccessTokenTTL <= 0 || c.RefreshTokenTTL <= 0 {
		errs = append(errs, errors.New("JWT_ACCESS_TOKEN_EXPIRES and JWT_REFRESH_TOKEN_EXPIRES must be positive"))
	}
	if c.LoginMaxFailures < 1 || c.LoginLockout <= 0 {
		errs = append(errs, errors.New("TENANTRY_LOGIN_MAX_FAILURES and TENANTRY_LOGIN_LOCKOUT must be positive"))
	}
	for name, v := range map[string]string{"TENANTRY_RATE_LIMIT_LOGIN": c.RateLimitLogin, "TENANTRY_RATE_LIMIT_REGISTER": c.RateLimitRegister,
		"TENANTRY_RATE_LIMIT_MAIL": c.RateLimitMail, "TENANTRY_RATE_LIMIT_MAIL_PER_ADDRESS": c.RateLimitMailPerAddress} {
		if _, err := ratelimit.ParseLimit(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	for _, cidr := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(strings.TrimSpace(cidr)); err != nil {
			errs = append(errs, fmt.Errorf("TENANTRY_TRUSTED_PROXIES: %q is not a CIDR prefix", cidr))
		}
	}
	if c.PasswordMemoryKiB < 8 || c.PasswordIterations < 1 {
		errs = append(errs, errors.New("TENANTRY_PASSWORD_HASH_MEMORY_KIB must be at least 8 and TENANTRY_PASSWORD_HASH_ITERATIONS at least 1"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("TENANTRY_DATA_DIR must not be empty"))
	}
	if c.BodyIdleTimeout < time.Second {
		errs = append(errs, errors.New("TENANTRY_BODY_IDLE_TIMEOUT must be at least 1s"))
	}
	if c.MaxUploadMB < 1 {
		errs = append(errs, errors.New("TENANTRY_MAX_UPLOAD_MB must be at least 1"))
	}
	if c.BlobGrace < time.Second {
		errs = append(errs, errors.New("TENANTRY_BLOB_GRACE_PERIOD must be at least 1s"))
	}
	for _, q := range []struct {
		name  string
		value *int64
	}{
		{"TENANTRY_QUOTA_STORAGE_MB", c.QuotaStorageMB},
		{"TENANTRY_QUOTA_DOCUMENTS", c.QuotaDocuments},
		{"TENANTRY_QUOTA_MEMBERS", c.QuotaMembers},
	} {
		if q.value != nil && *q.value < 0 {
			errs = append(errs, fmt.Errorf("%s: %d is negative; leave it unset for no limit", q.name, *q.value))
		}
	}
	if c.QuotaStorageMB != nil && *c.QuotaStorageMB > math.MaxInt64>>20 {
		errs = append(errs, fmt.Errorf("TENANTRY_QUOTA_STORAGE_MB: %d is too large", *c.QuotaStorageMB))
	}
	if c.Bucket() != "" && (c.S3AccessKeyID == "" || c.S3SecretKey == "") {
		errs = append(errs, errors.New("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY are required with S3_BUCKET"))
	}
	for name, d := range map[string]time.Duration{
		"TENANTRY_RELAY_POLL_INTERVAL":  c.RelayPollInterval,
		"TENANTRY_EVENT_RETENTION":      c.EventRetention,
		"TENANTRY_MAINTENANCE_INTERVAL": c.MaintenanceInterval,
		"TENANTRY_RELAY_SWEEP_INTERVAL": c.RelaySweepInterval,
	} {
		if d < 10*time.Millisecond {
			errs = append(errs, fmt.Errorf("%s must be at least 10ms", name))
		}
	}
	if c.KeyRotation < 0 {
		errs = append(errs, errors.New("TENANTRY_KEY_ROTATION_PERIOD must not be negative; 0 rotates only by hand"))
	}
	if _, err := c.Authorities(); err != nil {
		errs = append(errs, err)
	}
	if c.TSARate < 0 {
		errs = append(errs, errors.New("TENANTRY_TSA_RATE must not be negative"))
	}
	if c.TSATimeout < time.Second || c.TSARetryDelay < 10*time.Millisecond || c.TSARenewBefore < 0 {
		errs = append(errs, errors.New("TENANTRY_TSA_TIMEOUT must be at least 1s, TENANTRY_TSA_RETRY_DELAY at least 10ms, TENANTRY_TSA_RENEW_BEFORE not negative"))
	}
	if c.TSAMaxAttempts < 1 {
		errs = append(errs, errors.New("TENANTRY_TSA_MAX_ATTEMPTS must be at least 1"))
	}
	if c.JobRescueAfter < time.Second {
		errs = append(errs, errors.New("TENANTRY_JOB_RESCUE_AFTER must be at least 1s"))
	}
	if c.JobWorkers < 1 {
		errs = append(errs, errors.New("TENANTRY_JOB_WORKERS must be at least 1"))
	}
	if c.KafkaMaxAttempts < 1 {
		errs = append(errs, errors.New("TENANTRY_KAFKA_MAX_ATTEMPTS must be at least 1"))
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("TENANTRY_PUBLIC_URL must be an http(s) URL"))
		}
	}
	errs = append(errs, c.validateMail()...)
	return problems(errs)
}

// validateMail checks the mail settings.
func (c Config) validateMail() []error {
	var errs []error
	switch mode := c.SMTPTLSMode(); mode {
	case "required", "implicit", "opportunistic":
	case "none":
		if c.SMTPUsername != "" && c.SMTP() && !isLoopback(c.SMTPHost) {
			errs = append(errs, errors.New("SMTP_TLS=none would send SMTP_PASSWORD in clear: allowed only to a loopback SMTP_HOST"))
		}
	default:
		errs = append(errs, fmt.Errorf("SMTP_TLS: %q is not one of required, implicit, opportunistic or none", c.SMTPTLS))
	}
	if c.SMTPPort < 0 || c.SMTPPort > 65535 {
		errs = append(errs, fmt.Errorf("SMTP_PORT: %d is not a port", c.SMTPPort))
	}
	if c.SMTPFrom != "" {
		if a, err := mail.ParseAddress(c.SMTPFrom); err != nil || a.Address == "" {
			errs = append(errs, fmt.Errorf("SMTP_FROM: %q is not an address such as no-reply@example.com or \"Acme <no-reply@example.com>\"", c.SMTPFrom))
		}
	}
	if !c.SMTP() && (c.SMTPUsername != "" || c.SMTPPassword != "" || c.SMTPPort != 0) {
		errs = append(errs, errors.New("SMTP_PORT, SMTP_USERNAME and SMTP_PASSWORD need SMTP_HOST"))
	}
	if c.AppURL != "" {
		if u, err := url.Parse(c.AppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("TENANTRY_APP_URL must be an http(s) URL"))
		}
	}
	if strings.TrimSpace(c.AppName) == "" || strings.ContainsAny(c.AppName, "\r\n") {
		errs = append(errs, errors.New("TENANTRY_APP_NAME must be one line of text"))
	}
	if c.MailRetryInterval < 100*time.Millisecond {
		errs = append(errs, errors.New("TENANTRY_MAIL_RETRY_INTERVAL must be at least 100ms"))
	}
	switch c.SignInAlerts {
	case "device", "address", "off":
	default:
		errs = append(errs, fmt.Errorf("TENANTRY_SIGNIN_ALERTS: %q is not one of device, address or off", c.SignInAlerts))
	}
	return errs
}

// problems returns errs as an *Error, or nil when there are none.
func problems(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	e := &Error{}
	for _, err := range errs {
		e.Problems = append(e.Problems, err.Error())
	}
	return e
}

// Summary describes the configuration for a startup log line, without any
// secret or credential.
func (c Config) Summary() map[string]any {
	return map[string]any{
		"shape":               string(c.Shape()),
		"addr":                c.Addr,
		"data_dir":            c.DataDir,
		"tenant_db_max_conns": c.TenantDBMaxConns,
		"blob_store":          map[bool]string{true: "s3", false: "local"}[c.Bucket() != ""],
		"events":              map[bool]string{true: "kafka", false: "in-process"}[c.Kafka()],
		"mail":                map[bool]string{true: "smtp", false: "files"}[c.SMTP()],
	}
}

// EncryptsBlobs reports whether document content is sealed at rest.
func (c Config) EncryptsBlobs() bool { return strings.EqualFold(c.BlobEncryption, "on") }

// DecodeMasterKey reads TENANTRY_MASTER_KEY: 32 bytes written in base64
// (standard or URL alphabet, padded or not) or hex.
func DecodeMasterKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	for _, decode := range []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	} {
		if b, err := decode(text); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("TENANTRY_MASTER_KEY must be 32 bytes written in base64 or hex (for example: openssl rand -base64 32)")
}

// VaultSecretNames are the configuration secrets VAULT_SECRETS_PATH may
// hold, each read from there only when the environment leaves it unset.
var VaultSecretNames = []string{
	"JWT_SECRET_KEY",
	"TENANTRY_MASTER_KEY",
	"DATABASE_URL",
	"TENANT_DATABASE_URL_TEMPLATE",
	"REDIS_URL",
	"S3_ACCESS_KEY_ID",
	"S3_SECRET_ACCESS_KEY",
	"KAFKA_SASL_USERNAME",
	"KAFKA_SASL_PASSWORD",
	"SMTP_USERNAME",
	"SMTP_PASSWORD",
	"TENANTRY_TSA_AUTHORITIES",
}
