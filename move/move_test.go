package move_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/move"
)

type bundle struct {
	env           *apptest.Env
	owner         *apptest.User
	tenantID      string
	database      string
	first, second string // the servers' URL templates
}

// setup starts the production shape with servers one (the first test
// server) and two (the second), and a tenant on one with a few documents.
func setup(t *testing.T) *bundle {
	t.Helper()
	second := apptest.RequireSecondServer(t)
	b := &bundle{env: apptest.StartShape(t, config.Production), first: apptest.ServerTemplate(t), second: second}
	ctx := context.Background()
	reg := b.env.App.Engines.Servers
	if _, err := reg.Add(ctx, "one", b.first, 1, nil); err != nil {
		t.Fatal(err)
	}
	b.owner = b.env.SignUp(t, "Owner")
	b.tenantID = b.env.CreateTenant(t, b.owner, "Moving")
	if _, err := reg.Add(ctx, "two", second, 1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		b.env.Upload(t, b.owner, b.tenantID, fmt.Sprintf("before-%d.txt", i), []byte(fmt.Sprintf("content %d", i)))
	}
	b.database = b.location(t).database
	return b
}

type location struct{ server, database string }

func (b *bundle) location(t *testing.T) location {
	t.Helper()
	var l location
	if err := b.env.App.Engines.Control.QueryRow(context.Background(),
		`SELECT COALESCE(server, ''), database_name FROM tenants WHERE id = $1`, b.tenantID).Scan(&l.server, &l.database); err != nil {
		t.Fatal(err)
	}
	return l
}

// exists reports whether the tenant's database is on the server of
// template, and whether the move left anything of its own in it.
func exists(t *testing.T, template, database string) (found, followed bool) {
	t.Helper()
	ctx := context.Background()
	if !apptest.DatabaseExists(t, template, database) {
		return false, false
	}
	db, err := pgx.Connect(ctx, strings.ReplaceAll(template, "{database_name}", database))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenantry_move_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return true, n > 0
}

func (b *bundle) documents(t *testing.T) []apptest.Document {
	t.Helper()
	var list struct {
		Documents []apptest.Document `json:"documents"`
	}
	b.env.Get(t, "/api/tenants/"+b.tenantID+"/documents?per_page=100", b.owner.AccessToken).Expect(t, http.StatusOK, "").Data(t, &list)
	return list.Documents
}

// moveAndHold starts moving the tenant to server two and returns once the
// move holds writes back; it goes on when release is closed, and its
// outcome arrives on done.
func (b *bundle) moveAndHold() (release chan struct{}, done chan error) {
	held := make(chan struct{})
	release = make(chan struct{})
	cfg := move.Config{}
	move.HoldWhileFenced(&cfg, func(ctx context.Context) {
		close(held)
		<-release
	})
	done = make(chan error, 1)
	go func() {
		_, err := b.mover(cfg).Move(context.Background(), b.tenantID, "two")
		done <- err
	}()
	<-held
	return release, done
}

func (b *bundle) mover(cfg move.Config) *move.Mover {
	a := b.env.App
	return move.New(a.Engines.Control, a.Engines.Tenants.(move.Engine), a.Engines.Servers, a.Tenants, cfg)
}

// Ensure that while a move holds writes back, writes answer 503 with
// Retry-After and reads are served; that after the switch the tenant
// works on its new server with everything it had; and that the old
// database is gone.
func TestMoveHoldsWritesOnlyForTheSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release, done := b.moveAndHold()
	body, contentType := apptest.Multipart(t, apptest.Part{Name: "file", Filename: "during.txt", Body: []byte("during")})
	res := b.env.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + b.tenantID + "/documents",
		Token: b.owner.AccessToken, Body: body, ContentType: contentType}).Expect(t, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("a write refused during the switch carries no Retry-After")
	}
	if got := b.documents(t); len(got) != 5 {
		t.Fatalf("reads during the switch: %d documents, want 5", len(got))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if l := b.location(t); l.server != "two" {
		t.Fatalf("after the move the tenant is on %q", l.server)
	}
	b.env.Upload(t, b.owner, b.tenantID, "after.txt", []byte("after"))
	docs := b.documents(t)
	if len(docs) != 6 {
		t.Fatalf("after the move: %d documents, want the 5 before and the 1 after", len(docs))
	}
	for _, d := range docs {
		res := b.env.Get(t, "/api/tenants/"+b.tenantID+"/documents/"+d.ID+"/download", b.owner.AccessToken).Expect(t, http.StatusOK, "")
		if d.Filename == "after.txt" && string(res.Body) != "after" {
			t.Fatalf("download of %s after the move: %q", d.Filename, res.Body)
		}
	}
	if found, _ := exists(t, b.first, b.database); found {
		t.Fatal("the old database is still on server one")
	}
	if found, followed := exists(t, b.second, b.database); !found || followed {
		t.Fatalf("on server two: database %v, move triggers left %v", found, followed)
	}
}

// Ensure a move given up while it holds writes back, as when its mover dies
// and a worker undoes it, leaves the tenant on its old server, writable,
// with nothing of the move left on either server.
func TestMoveGivenUpMidSwitchLeavesTheTenantWorking(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release, done := b.moveAndHold()
	// Another process's janitor, for which the mover is long silent.
	n, err := b.mover(move.Config{StaleAfter: 1}).GiveUpStale(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("giving up the stale move: %d, %v", n, err)
	}
	b.env.Upload(t, b.owner, b.tenantID, "after.txt", []byte("after"))
	close(release)
	if err := <-done; err == nil {
		t.Fatal("the move that was given up reported success")
	}
	if l := b.location(t); l.server != "one" {
		t.Fatalf("after the given-up move the tenant is on %q", l.server)
	}
	if got := b.documents(t); len(got) != 6 {
		t.Fatalf("%d documents, want 6", len(got))
	}
	if found, followed := exists(t, b.first, b.database); !found || followed {
		t.Fatalf("on server one: database %v, move triggers left %v", found, followed)
	}
	if found, _ := exists(t, b.second, b.database); found {
		t.Fatal("the copy is still on server two")
	}
	// A new move can start, and completes.
	if _, err := b.mover(move.Config{}).Move(context.Background(), b.tenantID, "two"); err != nil {
		t.Fatal(err)
	}
	if got := b.documents(t); len(got) != 6 {
		t.Fatalf("after moving again: %d documents, want 6", len(got))
	}
}

// Ensure the moves that cannot be are refused, and leave nothing behind.
func TestMoveRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	m := b.mover(move.Config{})
	if _, err := m.Move(ctx, b.tenantID, "one"); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("a move to the tenant's own server: %v", err)
	}
	if _, err := m.Move(ctx, b.tenantID, "nowhere"); err == nil {
		t.Fatal("a move to an unknown server was accepted")
	}
	if err := b.env.App.Engines.Servers.SetState(ctx, "two", "draining"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Move(ctx, b.tenantID, "two"); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("a move to a draining server: %v", err)
	}
	if _, err := m.Move(ctx, "00000000-0000-4000-8000-000000000000", "default"); err == nil {
		t.Fatal("a move of an unknown tenant was accepted")
	}
	// Server one and the default server are one PostgreSQL server here:
	// the tenant's database is already there under its name.
	if _, err := m.Move(ctx, b.tenantID, "default"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a move onto the same PostgreSQL server under another name: %v", err)
	}
	if found, followed := exists(t, b.first, b.database); !found || followed {
		t.Fatalf("after a refused move: database %v, move triggers left %v", found, followed)
	}
	if l := b.location(t); l.server != "one" {
		t.Fatalf("after refused moves the tenant is on %q", l.server)
	}
	if got := b.documents(t); len(got) != 5 {
		t.Fatalf("%d documents, want 5", len(got))
	}
	// A deleted tenant may be purged at any time: it is not moved.
	if err := b.env.App.Engines.Servers.SetState(ctx, "two", "active"); err != nil {
		t.Fatal(err)
	}
	b.env.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + b.tenantID, Token: b.owner.AccessToken}).
		Expect(t, http.StatusOK, "")
	if _, err := m.Move(ctx, b.tenantID, "two"); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("a move of a deleted tenant: %v", err)
	}
	if found, _ := exists(t, b.second, b.database); found {
		t.Fatal("the refused move of a deleted tenant left a database on the target")
	}
}
