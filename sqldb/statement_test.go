package sqldb_test

import (
	"testing"

	"github.com/tenantry/tenantry/sqldb"
)

func TestStatementIsWrittenOncePerEngine(t *testing.T) {
	calls := 0
	s := sqldb.NewStatement(func(d sqldb.Dialect) string {
		calls++
		return "SELECT " + d.Time("created_at") + " FROM t"
	})
	for range 3 {
		if got, want := s.For(sqldb.SQLite), "SELECT CAST(created_at AS TEXT) FROM t"; got != want {
			t.Fatalf("SQLite text %q, want %q", got, want)
		}
		if got, want := s.For(sqldb.Postgres), "SELECT created_at FROM t"; got != want {
			t.Fatalf("PostgreSQL text %q, want %q", got, want)
		}
	}
	if calls != 2 {
		t.Fatalf("the text was built %d times, want once per engine", calls)
	}
}
