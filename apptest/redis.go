package apptest

import (
	"os"
	"testing"
)

// RedisEnv is the variable naming the Redis server for tests, as a URL such
// as redis://127.0.0.1:6379/0. Tests share that server: each must keep to
// keys of its own (a random prefix) and never flush the database.
const RedisEnv = "TENANTRY_TEST_REDIS_URL"

// RedisURL returns the Redis server for tests, or "" when none is
// configured.
func RedisURL(t testing.TB) string {
	t.Helper()
	return os.Getenv(RedisEnv)
}

// RequireRedis skips the test when no Redis server is configured, and
// returns its URL otherwise.
func RequireRedis(t testing.TB) string {
	t.Helper()
	u := RedisURL(t)
	if u == "" {
		t.Skipf("Redis suite skipped: set %s (for example redis://127.0.0.1:6379/0) to run it", RedisEnv)
	}
	return u
}
