package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// An administrative command run where the data directory does not exist
// (from the wrong directory, say) says so instead of creating an empty one
// and working on that; only serve creates it.
func TestAdminCommandsDoNotCreateTheDataDirectory(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"migrate"},
		{"migrate", "--dry-run"},
		{"migrate", "tenants"},
		{"users", "create-admin", "--email", "root@example.com", "--password", apptest.Password},
		{"users", "deactivate", "--email", "root@example.com"},
		{"audit", "verify"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			code, out := runCLI(t, map[string]string{"TENANTRY_DATA_DIR": dir}, args...)
			if code == 0 {
				t.Fatalf("exit status 0:\n%s", out)
			}
			if !strings.Contains(out, "TENANTRY_DATA_DIR") || !strings.Contains(out, dir) || strings.Count(out, "error:") != 1 {
				t.Fatalf("the error does not name TENANTRY_DATA_DIR and %s:\n%s", dir, out)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the data directory was created: %v", err)
			}
		})
	}
}

// In the production shape the data directory holds only blobs kept on local
// disk: commands that store none need no data directory.
func TestAdminCommandsNeedTheDataDirectoryOnlyForLocalBlobs(t *testing.T) {
	apptest.RequireShape(t, config.Production)
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	for k := range env {
		if strings.HasPrefix(k, "S3_") {
			delete(env, k)
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	env["TENANTRY_DATA_DIR"] = dir
	if code, out := runCLI(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate (%d):\n%s", code, out)
	}
	if code, out := runCLI(t, env, "audit", "verify"); code != 0 {
		t.Fatalf("audit verify (%d):\n%s", code, out)
	}
	code, out := runCLI(t, env, "users", "create-admin", "--email", "root@example.com", "--password", apptest.Password)
	if code == 0 || !strings.Contains(out, "TENANTRY_DATA_DIR") || !strings.Contains(out, dir) {
		t.Fatalf("users create-admin with blobs on local disk and no data directory (%d):\n%s", code, out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory was created: %v", err)
	}
}
