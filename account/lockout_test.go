package account_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
)

// Ensure pruning deletes the accounting rows that hold nothing any more and
// keeps those that do: a lock in force, or a recent failure.
func TestDeleteStaleLoginFailures(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := context.Background()
		accounts, db := env.App.Accounts, env.App.Engines.Control
		lockout := env.App.Config.LoginLockout
		fail := func(email, want string) {
			t.Helper()
			if _, err := accounts.Login(ctx, email, "Wrong-pass-1"); tenantry.ErrorCode(err) != want {
				t.Fatalf("login as %s: %v, want %s", email, err, want)
			}
		}
		fail("stale@example.com", tenantry.EInvalidCredentials)
		fail("recent@example.com", tenantry.EInvalidCredentials)
		for range 5 {
			fail("locked@example.com", tenantry.EInvalidCredentials)
		}
		fail("locked@example.com", tenantry.EAccountLocked)
		// Only a lock keeps a row whose last failure is old.
		old := sqldb.Now().Add(-lockout - time.Minute)
		for _, email := range []string{"stale@example.com", "locked@example.com"} {
			if _, err := db.Exec(ctx, `UPDATE login_failures SET last_failure_at = $2 WHERE email = $1`, email, old); err != nil {
				t.Fatal(err)
			}
		}

		n, err := accounts.DeleteStaleLoginFailures(ctx, time.Now())
		if err != nil || n != 1 {
			t.Fatalf("first pruning deleted %d rows (%v), want 1", n, err)
		}
		if _, found := env.LoginFailures(t, "stale@example.com"); found {
			t.Fatal("a stale row survived pruning")
		}
		if n, found := env.LoginFailures(t, "recent@example.com"); !found || n != 1 {
			t.Fatalf("recent row: %d failures (found %v)", n, found)
		}
		if n, found := env.LoginFailures(t, "locked@example.com"); !found || n != 5 {
			t.Fatalf("locked row: %d failures (found %v)", n, found)
		}
		fail("locked@example.com", tenantry.EAccountLocked)

		// Once the lock has run out and the failures are a lockout old,
		// nothing is left to keep.
		n, err = accounts.DeleteStaleLoginFailures(ctx, time.Now().Add(lockout+time.Minute))
		if err != nil || n != 2 {
			t.Fatalf("second pruning deleted %d rows (%v), want 2", n, err)
		}
	})
}

// Ensure a failure after a lock has run out starts the count over, for an
// unknown email as for a registered one.
func TestExpiredLockStartsTheCountOver(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := context.Background()
		db := env.App.Engines.Control
		email := "expired@example.com"
		for range 5 {
			if _, err := env.App.Accounts.Login(ctx, email, "Wrong-pass-1"); tenantry.ErrorCode(err) != tenantry.EInvalidCredentials {
				t.Fatal(err)
			}
		}
		ended := sqldb.Now().Add(-time.Second)
		if _, err := db.Exec(ctx, `UPDATE login_failures SET locked_until = $2 WHERE email = $1`, email, ended); err != nil {
			t.Fatal(err)
		}
		if _, err := env.App.Accounts.Login(ctx, email, "Wrong-pass-1"); tenantry.ErrorCode(err) != tenantry.EInvalidCredentials {
			t.Fatalf("login after the lock ran out: %v", err)
		}
		var lockedUntil *time.Time
		var n int
		if err := db.QueryRow(ctx, `SELECT failures, locked_until FROM login_failures WHERE email = $1`, email).Scan(&n, &lockedUntil); err != nil {
			t.Fatal(err)
		}
		if n != 1 || lockedUntil != nil {
			t.Fatalf("after the lock ran out and one failure: %d failures, locked until %v", n, lockedUntil)
		}
	})
}

// Ensure the migration that moved the accounting off the users table keeps
// the counts and locks in force, both ways.
func TestLoginFailuresMigration(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		ctx := context.Background()
		engines, err := app.OpenEngines(ctx, apptest.Config(t, shape))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = engines.Close() })
		db := engines.Control
		dialect := goose.DialectSQLite3
		if db.Dialect() == sqldb.Postgres {
			dialect = goose.DialectPostgres
		}
		p, err := goose.NewProvider(dialect, db.(interface{ SQL() *sql.DB }).SQL(), engines.ControlMigrations, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 4); err != nil {
			t.Fatal(err)
		}

		now := sqldb.Now()
		until := now.Add(10 * time.Minute)
		users := []struct {
			id, email   string
			failures    int
			lockedUntil *time.Time
		}{
			{"6f1c2a8e-0d4b-4f5e-9a61-2b7c3d4e5f60", "counting@example.com", 2, nil},
			{"7a2d3b9f-1e5c-4a6f-8b72-3c8d4e5f6a71", "locked@example.com", 5, &until},
			{"8b3e4cae-2f6d-4b7a-9c83-4d9e5f6a7b82", "clean@example.com", 0, nil},
		}
		for _, u := range users {
			if _, err := db.Exec(ctx, `
				INSERT INTO users (id, email, first_name, last_name, failed_logins, locked_until, created_at, updated_at)
				VALUES ($1, $2, 'F', 'L', $3, $4, $5, $5)`, u.id, u.email, u.failures, u.lockedUntil, now); err != nil {
				t.Fatal(err)
			}
		}

		if _, err := p.UpTo(ctx, 5); err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			var n int
			var lockedUntil *time.Time
			err := db.QueryRow(ctx, `SELECT failures, locked_until FROM login_failures WHERE email = $1`, u.email).Scan(&n, &lockedUntil)
			if u.failures == 0 {
				if !errors.Is(err, sqldb.ErrNoRows) {
					t.Fatalf("%s had no failures and has a row (%v)", u.email, err)
				}
				continue
			}
			if err != nil || n != u.failures || !sameTime(lockedUntil, u.lockedUntil) {
				t.Fatalf("%s: %d failures locked until %v (%v), want %d until %v", u.email, n, lockedUntil, err, u.failures, u.lockedUntil)
			}
		}
		// The carried-over rows' times must order like those the service
		// writes, or pruning would never see them age.
		var before, after int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM login_failures WHERE last_failure_at < $1`, now.Add(-time.Minute)).Scan(&before); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, `SELECT count(*) FROM login_failures WHERE last_failure_at < $1`, time.Now().Add(time.Minute)).Scan(&after); err != nil {
			t.Fatal(err)
		}
		if before != 0 || after != 2 {
			t.Fatalf("carried-over rows failed before a minute ago: %d, before a minute from now: %d; want 0 and 2", before, after)
		}
		if _, err := db.Exec(ctx, `UPDATE users SET failed_logins = 0`); err == nil {
			t.Fatal("users.failed_logins is still there")
		}

		if _, err := p.Down(ctx); err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			var n int
			var lockedUntil *time.Time
			if err := db.QueryRow(ctx, `SELECT failed_logins, locked_until FROM users WHERE email = $1`, u.email).Scan(&n, &lockedUntil); err != nil {
				t.Fatal(err)
			}
			if n != u.failures || !sameTime(lockedUntil, u.lockedUntil) {
				t.Fatalf("%s after rolling back: %d failures locked until %v, want %d until %v", u.email, n, lockedUntil, u.failures, u.lockedUntil)
			}
		}
		if _, err := p.Up(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Ensure a success does not lift a lock that other attempts set while its
// own password was being checked, and does lift one it set itself.
func TestSuccessKeepsALockOthersSet(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		ctx := context.Background()
		accounts, db := env.App.Accounts, env.App.Engines.Control
		u := env.Register(t, "Owner")

		mine, err := accounts.Reserve(ctx, u.Email)
		if err != nil {
			t.Fatal(err)
		}
		var last *account.Attempt
		for range 4 {
			if last, err = accounts.Reserve(ctx, u.Email); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := accounts.Reserve(ctx, u.Email); tenantry.ErrorCode(err) != tenantry.EAccountLocked {
			t.Fatalf("a sixth attempt: %v, want the address locked", err)
		}
		if err := accounts.Succeeded(ctx, db, mine); err != nil {
			t.Fatal(err)
		}
		if _, err := accounts.Login(ctx, u.Email, apptest.Password); tenantry.ErrorCode(err) != tenantry.EAccountLocked {
			t.Fatalf("login after an earlier attempt succeeded under a lock others set: %v, want still locked", err)
		}
		if err := accounts.Succeeded(ctx, db, last); err != nil {
			t.Fatal(err)
		}
		if _, err := accounts.Login(ctx, u.Email, apptest.Password); err != nil {
			t.Fatalf("login after the attempt that set the lock succeeded: %v", err)
		}
	})
}
