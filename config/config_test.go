package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/config"
)

const validKey = "0123456789abcdef0123456789abcdef"

func TestLoadNamesTheVariableAndTheAcceptedValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unknown log level", map[string]string{"TENANTRY_LOG_LEVEL": "verbose"},
			`TENANTRY_LOG_LEVEL: "verbose" is not one of debug, info, warn or error`},
		{"not a number", map[string]string{"TENANTRY_MAX_UPLOAD_MB": "ten"},
			`TENANTRY_MAX_UPLOAD_MB: "ten" is not a whole number`},
		{"negative where none may be", map[string]string{"TENANTRY_PASSWORD_HASH_MEMORY_KIB": "-5"},
			`TENANTRY_PASSWORD_HASH_MEMORY_KIB: "-5" is not a whole number of 0 or more`},
		{"too large", map[string]string{"TENANTRY_JOB_WORKERS": "99999999999999999999"},
			`TENANTRY_JOB_WORKERS: "99999999999999999999" is too large`},
		{"not a duration", map[string]string{"TENANTRY_SHUTDOWN_TIMEOUT": "soon"},
			`TENANTRY_SHUTDOWN_TIMEOUT: "soon" is not a duration such as 30s or 5m`},
		{"a duration without its unit", map[string]string{"TENANTRY_LOGIN_LOCKOUT": "15"},
			`TENANTRY_LOGIN_LOCKOUT: "15" is not a duration such as 30s or 5m`},
		{"neither seconds nor a duration", map[string]string{"JWT_ACCESS_TOKEN_EXPIRES": "soon"},
			`JWT_ACCESS_TOKEN_EXPIRES: "soon" is neither a number of seconds nor a duration such as 900 or 15m`},
		{"quota not a number", map[string]string{"TENANTRY_QUOTA_STORAGE_MB": "lots"},
			`TENANTRY_QUOTA_STORAGE_MB: "lots" is not a whole number`},
		{"negative quota", map[string]string{"TENANTRY_QUOTA_DOCUMENTS": "-1"},
			`TENANTRY_QUOTA_DOCUMENTS: -1 is negative; leave it unset for no limit`},
		{"quota too large", map[string]string{"TENANTRY_QUOTA_MEMBERS": "99999999999999999999"},
			`TENANTRY_QUOTA_MEMBERS: "99999999999999999999" is too large`},
		{"storage quota too large in bytes", map[string]string{"TENANTRY_QUOTA_STORAGE_MB": "9000000000000000"},
			`TENANTRY_QUOTA_STORAGE_MB: 9000000000000000 is too large`},
		{"neither a duration nor days", map[string]string{"TENANTRY_TENANT_RETENTION": "a month"},
			`TENANTRY_TENANT_RETENTION: "a month" is neither a duration nor a number of days, such as 720h or 30d`},
		{"negative retention", map[string]string{"TENANTRY_TENANT_RETENTION": "-1h"},
			`TENANTRY_TENANT_RETENTION must not be negative`},
		{"short key", map[string]string{"JWT_SECRET_KEY": "short"},
			`JWT_SECRET_KEY must be at least 32 bytes`},
		{"short key in the production shape", map[string]string{"DATABASE_URL": "postgres://db/tenantry", "JWT_SECRET_KEY": "short"},
			`JWT_SECRET_KEY must be at least 32 bytes`},
		{"no key in the production shape", map[string]string{"DATABASE_URL": "postgres://db/tenantry"},
			`JWT_SECRET_KEY must be set in the production shape, to at least 32 bytes`},
		{"authorities not JSON", map[string]string{"TENANTRY_TSA_AUTHORITIES": "digicert"},
			`TENANTRY_TSA_AUTHORITIES: not a JSON array of authorities`},
		{"authority without a usable URL", map[string]string{"TENANTRY_TSA_AUTHORITIES": `[{"name":"a","url":"timestamp.example"}]`},
			`TENANTRY_TSA_AUTHORITIES[0]: a: url "timestamp.example" is not an http(s) URL`},
		{"authority roots unreadable", map[string]string{"TENANTRY_TSA_AUTHORITIES": `[{"name":"a","url":"http://tsa.example","roots_file":"/nonexistent/roots.pem"}]`},
			`TENANTRY_TSA_AUTHORITIES[0]: a: roots_file`},
		{"DigiCert URL not a URL", map[string]string{"DIGICERT_TSA_URL": "digicert"},
			`TENANTRY_TSA_AUTHORITIES[0]: digicert: url "digicert" is not an http(s) URL`},
		{"no attempt", map[string]string{"TENANTRY_TSA_MAX_ATTEMPTS": "0"},
			`TENANTRY_TSA_MAX_ATTEMPTS must be at least 1`},
		{"negative rate", map[string]string{"TENANTRY_TSA_RATE": "-1"},
			`TENANTRY_TSA_RATE must not be negative`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not say %q", msg, tc.want)
			}
			name, _, _ := strings.Cut(tc.want, " ")
			name = strings.TrimSuffix(name, ":")
			if n := strings.Count(msg, name); n != 1 {
				t.Fatalf("error names %s %d times, want once:\n%s", name, n, msg)
			}
			if strings.Contains(msg, "field") || strings.Contains(msg, "MaxUpload") || strings.Contains(msg, "strconv") {
				t.Fatalf("error speaks of the Go code: %q", msg)
			}
		})
	}
}

func TestLoadReportsEveryProblemOnce(t *testing.T) {
	t.Parallel()
	_, err := config.Load(map[string]string{
		"DATABASE_URL":                "postgres://db/tenantry",
		"JWT_SECRET_KEY":              "short",
		"TENANTRY_LOG_LEVEL":          "verbose",
		"TENANTRY_MAX_UPLOAD_MB":      "ten",
		"TENANTRY_SHUTDOWN_TIMEOUT":   "soon",
		"TENANTRY_JOB_WORKERS":        "0",
		"TENANTRY_KAFKA_MAX_ATTEMPTS": "0",
	})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, name := range []string{"JWT_SECRET_KEY", "TENANTRY_LOG_LEVEL", "TENANTRY_MAX_UPLOAD_MB", "TENANTRY_SHUTDOWN_TIMEOUT", "TENANTRY_JOB_WORKERS", "TENANTRY_KAFKA_MAX_ATTEMPTS"} {
		if n := strings.Count(msg, name); n != 1 {
			t.Errorf("%s is named %d times, want once", name, n)
		}
	}
	if lines := strings.Count(msg, "\n"); lines != 6 {
		t.Errorf("%d lines after the first, want one per problem", lines)
	}
	if t.Failed() {
		t.Log(msg)
	}
}

func TestLoadAcceptsLogLevelsInAnyCase(t *testing.T) {
	t.Parallel()
	for _, level := range []string{"debug", "info", "warn", "error", "DEBUG", "Warn", ""} {
		cfg, err := config.Load(map[string]string{"TENANTRY_LOG_LEVEL": level})
		if err != nil {
			t.Errorf("TENANTRY_LOG_LEVEL=%q: %v", level, err)
		}
		if level == "" && cfg.LogLevel != "info" {
			t.Errorf("default log level %q", cfg.LogLevel)
		}
	}
}

func TestLoadAcceptsTheDefaultsAndValidValues(t *testing.T) {
	t.Parallel()
	if _, err := config.Load(map[string]string{}); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	cfg, err := config.Load(map[string]string{
		"DATABASE_URL":             "postgres://db/tenantry",
		"JWT_SECRET_KEY":           validKey,
		"TENANTRY_MAX_UPLOAD_MB":   "10",
		"JWT_ACCESS_TOKEN_EXPIRES": "15m",
		"TENANTRY_LOGIN_LOCKOUT":   "1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxUploadMB != 10 || cfg.AccessTokenTTL != config.Seconds(15*60e9) || cfg.LoginLockout.String() != "1h0m0s" {
		t.Fatalf("parsed %+v", cfg)
	}
	if cfg.QuotaStorageMB != nil || cfg.QuotaDocuments != nil || cfg.QuotaMembers != nil {
		t.Fatal("quotas without their variables are not unlimited")
	}
	cfg, err = config.Load(map[string]string{"TENANTRY_QUOTA_STORAGE_MB": "0", "TENANTRY_QUOTA_DOCUMENTS": "1000", "TENANTRY_QUOTA_MEMBERS": "25"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QuotaStorageMB == nil || *cfg.QuotaStorageMB != 0 || cfg.QuotaDocuments == nil || *cfg.QuotaDocuments != 1000 || cfg.QuotaMembers == nil || *cfg.QuotaMembers != 25 {
		t.Fatalf("quotas parsed as %v %v %v", cfg.QuotaStorageMB, cfg.QuotaDocuments, cfg.QuotaMembers)
	}
	for value, want := range map[string]time.Duration{"": 30 * 24 * time.Hour, "720h": 720 * time.Hour, "30d": 30 * 24 * time.Hour,
		"7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute, "0d": 0} {
		env := map[string]string{}
		if value != "" {
			env["TENANTRY_TENANT_RETENTION"] = value
		}
		cfg, err := config.Load(env)
		if err != nil || time.Duration(cfg.TenantRetention) != want {
			t.Errorf("TENANTRY_TENANT_RETENTION=%q: %v, %v; want %v", value, time.Duration(cfg.TenantRetention), err, want)
		}
	}
}

// Ensure the original's DIGICERT_TSA_URL configures an authority named
// digicert beside those of TENANTRY_TSA_AUTHORITIES.
func TestDigiCertTSAURL(t *testing.T) {
	t.Parallel()
	c, err := config.Load(map[string]string{
		"DIGICERT_TSA_URL":         "https://timestamp.digicert.com",
		"TENANTRY_TSA_AUTHORITIES": `[{"name":"local","url":"http://127.0.0.1:8318/tsa","policy_oid":"1.2.3.4"}]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Authorities()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "local" || list[0].Policy != "1.2.3.4" || list[1].Name != "digicert" ||
		list[1].URL != "https://timestamp.digicert.com" || list[1].Roots == nil {
		t.Fatalf("authorities %+v", list)
	}
	if c.TSARate != 10 || c.TSAMaxAttempts != 6 || c.TSATimeout != 30*time.Second {
		t.Fatalf("defaults: rate %v, attempts %d, timeout %s", c.TSARate, c.TSAMaxAttempts, c.TSATimeout)
	}
}
