package sqlite

import (
	"embed"
	"io/fs"
)

//go:embed migrations
var migrations embed.FS

// ControlMigrations returns the control database's migrations for SQLite.
func ControlMigrations() fs.FS { return mustSub("migrations/control") }

// TenantMigrations returns the tenant databases' migrations for SQLite.
func TenantMigrations() fs.FS { return mustSub("migrations/tenant") }

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		// The directory is embedded at build time; its absence is a build bug.
		panic(err)
	}
	return sub
}
