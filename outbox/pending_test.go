package outbox

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantry/tenantry/migrate"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/sqlite"
)

// The rules of outbox_pending, on the statements themselves: a claim
// excludes other relays until it lapses, and a drained stream is forgotten
// only if no mark came in since its claim.
func TestPendingStreamClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "control.db"), sqlite.Options{ReadConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mig, err := migrate.NewFiles(db, "control database", sqlite.ControlMigrations())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mig.Up(ctx); err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM outbox_pending`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if err := Mark(ctx, db, "t1", "tenant_t1"); err != nil {
		t.Fatal(err)
	}
	now := sqldb.Now()
	version, ok, err := claim(ctx, db, "t1", "relay-a", now, now.Add(time.Minute))
	if err != nil || !ok {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if _, ok, _ := claim(ctx, db, "t1", "relay-b", now, now.Add(time.Minute)); ok {
		t.Fatal("a live claim was taken over")
	}
	if due, _ := dueStreams(ctx, db, now, 10); len(due) != 0 {
		t.Fatalf("a claimed stream is listed as due: %v", due)
	}

	// A writer marks the stream while relay-a drains it.
	if err := Mark(ctx, db, "t1", "tenant_t1"); err != nil {
		t.Fatal(err)
	}
	if err := finish(ctx, db, "t1", "relay-a", version, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if pending() != 1 {
		t.Fatal("a stream marked during its drain was forgotten")
	}
	due, err := dueStreams(ctx, db, sqldb.Now(), 10)
	if err != nil || len(due) != 1 || due[0].version != version+1 {
		t.Fatalf("released stream: %+v, %v", due, err)
	}

	// Without a new mark, a drained stream is forgotten.
	now = sqldb.Now()
	version, ok, err = claim(ctx, db, "t1", "relay-b", now, now.Add(time.Minute))
	if err != nil || !ok {
		t.Fatal(err)
	}
	if err := finish(ctx, db, "t1", "relay-b", version, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if pending() != 0 {
		t.Fatal("a drained stream stayed pending")
	}

	// A lapsed claim can be taken; a failed drain keeps others away until
	// its retry time.
	if err := Mark(ctx, db, "t2", "tenant_t2"); err != nil {
		t.Fatal(err)
	}
	now = sqldb.Now()
	if _, ok, _ := claim(ctx, db, "t2", "relay-a", now, now.Add(-time.Second)); !ok {
		t.Fatal("claim failed")
	}
	if _, ok, _ := claim(ctx, db, "t2", "relay-b", now, now.Add(time.Minute)); !ok {
		t.Fatal("a lapsed claim could not be taken over")
	}
	if err := finish(ctx, db, "t2", "relay-b", 1, false, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if due, _ := dueStreams(ctx, db, now.Add(time.Minute), 10); len(due) != 0 {
		t.Fatal("a stream was due before its retry time")
	}
	if due, _ := dueStreams(ctx, db, now.Add(2*time.Hour), 10); len(due) != 1 {
		t.Fatal("a stream was not due after its retry time")
	}
}
