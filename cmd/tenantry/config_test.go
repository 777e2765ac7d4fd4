package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// A configuration error names the variable and what it accepts, is printed
// once, and stops any command with a non-zero status before it does
// anything.
func TestConfigurationErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unknown log level", map[string]string{"TENANTRY_LOG_LEVEL": "verbose"},
			[]string{`TENANTRY_LOG_LEVEL: "verbose" is not one of debug, info, warn or error`}},
		{"bad number", map[string]string{"TENANTRY_MAX_UPLOAD_MB": "ten"},
			[]string{`TENANTRY_MAX_UPLOAD_MB: "ten" is not a whole number`}},
		{"bad duration", map[string]string{"TENANTRY_SHUTDOWN_TIMEOUT": "soon"},
			[]string{`TENANTRY_SHUTDOWN_TIMEOUT: "soon" is not a duration such as 30s or 5m`}},
		{"short secret in the production shape", map[string]string{"DATABASE_URL": "postgres://127.0.0.1:1/none", "JWT_SECRET_KEY": "short"},
			[]string{"JWT_SECRET_KEY must be at least 32 bytes"}},
		{"several", map[string]string{"TENANTRY_LOG_LEVEL": "loud", "TENANTRY_MAX_UPLOAD_MB": "ten", "JWT_SECRET_KEY": "short"},
			[]string{`TENANTRY_LOG_LEVEL: "loud"`, `TENANTRY_MAX_UPLOAD_MB: "ten"`, "JWT_SECRET_KEY must be at least 32 bytes"}},
	} {
		for _, args := range [][]string{{"serve"}, {"worker"}, {"migrate"}, {"users", "activate", "--email", "a@example.com"}, {"audit", "verify"}} {
			t.Run(tc.name+"/"+strings.Join(args[:1], " "), func(t *testing.T) {
				t.Parallel()
				env := map[string]string{"TENANTRY_DATA_DIR": t.TempDir(), "TENANTRY_ADDR": "127.0.0.1:0"}
				for k, v := range tc.env {
					env[k] = v
				}
				// Cancelled from the start, so that a command that wrongly
				// accepts its configuration stops at once instead of serving.
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				var stdout, stderr bytes.Buffer
				code := run(ctx, args, env, strings.NewReader(""), &stdout, &stderr)
				out := stderr.String()
				if code == 0 {
					t.Fatalf("exit status 0:\n%s%s", stdout.String(), out)
				}
				if n := strings.Count(out, "error:"); n != 1 {
					t.Errorf("%d error reports, want one:\n%s", n, out)
				}
				for _, want := range tc.want {
					if !strings.Contains(out, want) {
						t.Errorf("does not say %q:\n%s", want, out)
					}
				}
				for name := range tc.env {
					if name == "DATABASE_URL" {
						continue
					}
					if n := strings.Count(out, name); n != 1 {
						t.Errorf("names %s %d times, want once:\n%s", name, n, out)
					}
				}
				if strings.Contains(out, "MaxUploadMB") || strings.Contains(out, "ShutdownTimeout") {
					t.Errorf("names a Go field:\n%s", out)
				}
			})
		}
	}
}
