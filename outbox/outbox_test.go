package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// bundle is a control database and tenant databases without the app's own
// relay, so that each test drives relays itself.
type bundle struct {
	control sqldb.DB
	dbs     *tenantdb.Manager
	prov    *tenant.Provisioner
	streams *outbox.Streams
	engines *app.Engines
}

func setup(t testing.TB, shape config.Shape) *bundle {
	t.Helper()
	engines := apptest.Engines(t, apptest.Config(t, shape))
	dbs, err := tenantdb.NewManager(engines.Tenants, tenantdb.Config{MaxConns: 16, ConnsPerDB: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbs.Close() })
	return &bundle{control: engines.Control, dbs: dbs, prov: tenant.NewProvisioner(engines.Control, dbs, nil, slog.New(slog.DiscardHandler)),
		streams: outbox.NewStreams(engines.Control, nil, nil), engines: engines}
}

func (b *bundle) tenant(t testing.TB, name string) *tenantry.Tenant {
	t.Helper()
	tn, err := b.prov.Provision(context.Background(), name, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// emitTenant commits n events in a tenant's database the way services do.
func (b *bundle) emitTenant(t testing.TB, tn *tenantry.Tenant, eventType string, n int) []string {
	t.Helper()
	return b.emitTenantWhile(t, tn, eventType, n, func() {})
}

// emitTenantWhile is emitTenant running during, after the events are
// written and before the commit.
func (b *bundle) emitTenantWhile(t testing.TB, tn *tenantry.Tenant, eventType string, n int, during func()) []string {
	t.Helper()
	ctx := context.Background()
	lease, err := b.dbs.Acquire(ctx, tenantdb.Ref{Name: tn.DatabaseName})
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	var ids []string
	err = b.streams.TenantTx(ctx, tn.ID, tn.DatabaseName, lease.DB(), func(tx sqldb.Tx) error {
		defer during()
		for i := range n {
			ev, err := outbox.NewEvent(eventType, tn.ID, "", map[string]int{"n": i})
			if err != nil {
				return err
			}
			if err := outbox.Add(ctx, tx, ev); err != nil {
				return err
			}
			ids = append(ids, ev.EventID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// emitControl commits an event in the control database, with its mark in
// the same transaction.
func (b *bundle) emitControl(t testing.TB, eventType, tenantID string) string {
	t.Helper()
	ctx := context.Background()
	var id string
	err := b.control.InTx(ctx, func(tx sqldb.Tx) error {
		ev, err := outbox.NewEvent(eventType, tenantID, "", map[string]string{})
		if err != nil {
			return err
		}
		id = ev.EventID
		if err := outbox.Add(ctx, tx, ev); err != nil {
			return err
		}
		return outbox.Mark(ctx, tx, outbox.PlatformStream, "")
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// recorder is a sink remembering what it was given, and failing while
// told to.
type recorder struct {
	mu      sync.Mutex
	events  []tenantry.Event
	failing bool
	onBatch func([]tenantry.Event)
}

func (r *recorder) Publish(ctx context.Context, events []tenantry.Event) error {
	r.mu.Lock()
	failing, hook := r.failing, r.onBatch
	r.mu.Unlock()
	if failing {
		return errors.New("broker unavailable")
	}
	if hook != nil {
		hook(events)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
	return nil
}

func (r *recorder) ids(filter func(tenantry.Event) bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if filter == nil || filter(ev) {
			out = append(out, ev.EventID)
		}
	}
	return out
}

func newRelay(b *bundle, sink outbox.Sink, visited func(string)) *outbox.Relay {
	return outbox.NewRelay(b.control, b.dbs, sink, nil, outbox.RelayConfig{
		Owner: fmt.Sprintf("test-%p", sink), Batch: 7, Lease: time.Minute, RetryDelay: 200 * time.Millisecond, Visited: visited,
	})
}

// drain runs relay passes until one finds nothing to do.
func drain(t testing.TB, r *outbox.Relay) {
	t.Helper()
	for range 1000 {
		busy, err := r.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !busy {
			return
		}
	}
	t.Fatal("the relay never finished")
}

func feed(t testing.TB, b *bundle, tn *tenantry.Tenant) []outbox.Published {
	t.Helper()
	lease, err := b.dbs.Acquire(context.Background(), tenantdb.Ref{Name: tn.DatabaseName})
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release()
	got, err := outbox.Feed(context.Background(), lease.DB(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRelayPublishesEveryCommittedEventOnceInOrder(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		a, c := b.tenant(t, "A"), b.tenant(t, "C")
		var wantA, wantC []string
		for range 3 {
			wantA = append(wantA, b.emitTenant(t, a, tenantry.EventDocumentUploaded, 5)...)
			wantC = append(wantC, b.emitTenant(t, c, tenantry.EventDocumentDeleted, 4)...)
		}
		platform := b.emitControl(t, tenantry.EventUserRegistered, "")
		forwarded := b.emitControl(t, tenantry.EventMemberAdded, a.ID)

		sink := &recorder{}
		drain(t, newRelay(b, sink, nil))

		of := func(tn *tenantry.Tenant) func(tenantry.Event) bool {
			return func(ev tenantry.Event) bool { return ev.TenantID == tn.ID }
		}
		gotA := sink.ids(of(a))
		if !slices.Equal(gotA, append(slices.Clone(wantA), forwarded)) || !slices.Equal(sink.ids(of(c)), wantC) {
			t.Fatalf("tenant streams out of order or incomplete:\nA %v\nC %v", gotA, sink.ids(of(c)))
		}
		if got := sink.ids(func(ev tenantry.Event) bool { return ev.TenantID == "" }); !slices.Equal(got, []string{platform}) {
			t.Fatalf("platform events = %v", got)
		}
		// Positions number the tenant's stream in publication order.
		for i, p := range feed(t, b, a) {
			if p.Position != int64(i+1) || p.Event.EventID != gotA[i] {
				t.Fatalf("feed[%d] = %d %s", i, p.Position, p.Event.EventID)
			}
		}
		// Nothing is published twice.
		drain(t, newRelay(b, sink, nil))
		if n := len(sink.ids(nil)); n != len(wantA)+len(wantC)+2 {
			t.Fatalf("%d events published in all", n)
		}
	})
}

func TestRolledBackChangesEmitNothing(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		tn := b.tenant(t, "T")
		ctx := context.Background()
		boom := errors.New("the change failed")
		lease, err := b.dbs.Acquire(ctx, tenantdb.Ref{Name: tn.DatabaseName})
		if err != nil {
			t.Fatal(err)
		}
		err = b.streams.TenantTx(ctx, tn.ID, tn.DatabaseName, lease.DB(), func(tx sqldb.Tx) error {
			if err := outbox.Emit(ctx, tx, tenantry.EventDocumentUploaded, tn.ID, "", nil); err != nil {
				return err
			}
			return boom
		})
		lease.Release()
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		err = b.control.InTx(ctx, func(tx sqldb.Tx) error {
			if err := outbox.Emit(ctx, tx, tenantry.EventUserRegistered, "", "", nil); err != nil {
				return err
			}
			if err := outbox.Mark(ctx, tx, outbox.PlatformStream, ""); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		sink := &recorder{}
		drain(t, newRelay(b, sink, nil))
		if got := sink.ids(nil); len(got) != 0 {
			t.Fatalf("rolled-back changes published %v", got)
		}
	})
}

// A relay that cannot publish, or dies holding a stream, loses nothing: the
// events stay in the outbox and the next relay publishes them.
func TestCommittedEventsSurviveAFailedOrDeadRelay(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		tn := b.tenant(t, "T")
		want := b.emitTenant(t, tn, tenantry.EventDocumentUploaded, 3)

		broken := &recorder{failing: true}
		if _, err := newRelay(b, broken, nil).Pass(context.Background()); err == nil {
			t.Fatal("a pass with a failing sink reported no error")
		}
		time.Sleep(250 * time.Millisecond) // the failed stream's retry delay

		// A relay that claimed the stream and died: until its lease
		// lapses no one else publishes the stream, then someone does.
		if _, err := b.control.Exec(context.Background(),
			`UPDATE outbox_pending SET claimed_by = 'dead', claim_expires_at = $2 WHERE stream = $1`,
			tn.ID, sqldb.Now().Add(300*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		early := &recorder{}
		drain(t, newRelay(b, early, nil))
		if len(early.ids(nil)) != 0 {
			t.Fatal("a stream was published while another relay's claim on it was live")
		}

		time.Sleep(350 * time.Millisecond)
		sink := &recorder{}
		drain(t, newRelay(b, sink, nil))
		if got := sink.ids(nil); !slices.Equal(got, want) {
			t.Fatalf("after restart: %v, want %v", got, want)
		}
	})
}

// A mark made while a relay drains the stream keeps it pending, so the
// event committed meanwhile is published by the next pass.
func TestAMarkDuringTheDrainIsNotLost(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		tn := b.tenant(t, "T")
		first := b.emitTenant(t, tn, tenantry.EventDocumentUploaded, 1)
		var late []string
		sink := &recorder{}
		sink.onBatch = func([]tenantry.Event) {
			if late == nil {
				late = b.emitTenant(t, tn, tenantry.EventDocumentDeleted, 1)
			}
		}
		drain(t, newRelay(b, sink, nil))
		if got := sink.ids(nil); !slices.Equal(got, append(first, late...)) {
			t.Fatalf("published %v, want %v then %v", got, first, late)
		}
	})
}

// A relay may claim and drain a tenant's stream between the writer's mark
// and its commit, finding nothing yet; the writer's events are published
// all the same. The relay reads through its own connections, as one in
// another process would.
func TestADrainBeforeTheCommitStrandsNothing(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		tn := b.tenant(t, "T")
		elsewhere, err := tenantdb.NewManager(b.engines.Tenants, tenantdb.Config{MaxConns: 4, ConnsPerDB: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer elsewhere.Close()
		sink := &recorder{}
		relay := outbox.NewRelay(b.control, elsewhere, sink, nil, outbox.RelayConfig{Owner: "elsewhere", Lease: time.Minute})

		var visitedEarly bool
		want := b.emitTenantWhile(t, tn, tenantry.EventDocumentUploaded, 2, func() {
			busy, err := relay.Pass(context.Background())
			if err != nil {
				t.Error(err)
			}
			visitedEarly = busy
		})
		if !visitedEarly {
			t.Fatal("the relay did not visit the stream before the commit")
		}
		if got := sink.ids(nil); len(got) != 0 {
			t.Fatalf("uncommitted events were published: %v", got)
		}
		drain(t, relay)
		if got := sink.ids(nil); !slices.Equal(got, want) {
			t.Fatalf("published %v, want %v", got, want)
		}
	})
}

func TestRelayVisitsOnlyTenantsWithPendingEvents(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		busy, idle := 1000, 200
		if shape == config.Production {
			busy, idle = 100, 50
		}
		if testing.Short() {
			busy, idle = busy/10, idle/10
		}
		b := setup(t, shape)
		var withEvents []string
		stride := (busy + idle) / idle
		for i := range busy + idle {
			tn := b.tenant(t, fmt.Sprintf("Tenant %d", i))
			if i%stride == 0 {
				continue // one tenant in stride has no events
			}
			b.emitTenant(t, tn, tenantry.EventDocumentUploaded, 2)
			withEvents = append(withEvents, tn.ID)
		}
		var mu sync.Mutex
		visited := map[string]int{}
		sink := &recorder{}
		drain(t, newRelay(b, sink, func(stream string) {
			mu.Lock()
			visited[stream]++
			mu.Unlock()
		}))
		if len(visited) != len(withEvents) {
			t.Fatalf("visited %d streams, want the %d with events", len(visited), len(withEvents))
		}
		for _, id := range withEvents {
			if visited[id] != 1 {
				t.Fatalf("tenant %s visited %d times", id, visited[id])
			}
		}
		if n := len(sink.ids(nil)); n != 2*len(withEvents) {
			t.Fatalf("%d events published, want %d", n, 2*len(withEvents))
		}
		t.Logf("%d tenants, %d with events: %d visited", busy+idle, len(withEvents), len(visited))
	})
}

func TestSweepFindsUnmarkedEventsAndPrunePublishedOnes(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		tn := b.tenant(t, "T")
		ctx := context.Background()
		// An event whose mark was lost.
		lease, err := b.dbs.Acquire(ctx, tenantdb.Ref{Name: tn.DatabaseName})
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Emit(ctx, lease.DB(), tenantry.EventDocumentUploaded, tn.ID, "", nil); err != nil {
			t.Fatal(err)
		}
		lease.Release()
		sink := &recorder{}
		relay := newRelay(b, sink, nil)
		drain(t, relay)
		if len(sink.ids(nil)) != 0 {
			t.Fatal("an unmarked stream was visited without a sweep")
		}
		n, err := outbox.Sweep(ctx, b.control, b.dbs, []*tenantry.Tenant{tn})
		if err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v", n, err)
		}
		drain(t, relay)
		if len(sink.ids(nil)) != 1 {
			t.Fatal("the swept event was not published")
		}

		pending := b.emitTenant(t, tn, tenantry.EventDocumentDeleted, 1)
		deleted, err := outbox.Prune(ctx, b.control, b.dbs, []*tenantry.Tenant{tn}, time.Now().Add(time.Second))
		if err != nil || deleted != 1 {
			t.Fatalf("Prune = %d, %v; want the one published event", deleted, err)
		}
		drain(t, relay)
		if got := sink.ids(nil); got[len(got)-1] != pending[0] {
			t.Fatal("pruning removed an unpublished event")
		}
	})
}

// Ensure that a sweep and a prune, which pass over every tenant, close again
// the tenant databases they had to open and leave open the ones that were.
func TestSweepAndPruneCloseTheDatabasesTheyOpened(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		b := setup(t, shape)
		ctx := context.Background()
		tenants := []*tenantry.Tenant{b.tenant(t, "Closed"), b.tenant(t, "Also closed"), b.tenant(t, "Open")}
		// Provisioning left them open; close all but the last.
		for _, tn := range tenants[:2] {
			if err := b.dbs.Forget(ctx, tenantdb.Ref{Name: tn.DatabaseName}); err != nil {
				t.Fatal(err)
			}
		}
		if s := b.dbs.Stats(); s.Open != 1 {
			t.Fatalf("%d tenant databases open before the passes, want 1", s.Open)
		}
		if _, err := outbox.Sweep(ctx, b.control, b.dbs, tenants); err != nil {
			t.Fatal(err)
		}
		if s := b.dbs.Stats(); s.Open != 1 {
			t.Fatalf("%d tenant databases open after a sweep, want 1", s.Open)
		}
		if _, err := outbox.Prune(ctx, b.control, b.dbs, tenants, time.Now()); err != nil {
			t.Fatal(err)
		}
		if s := b.dbs.Stats(); s.Open != 1 {
			t.Fatalf("%d tenant databases open after a prune, want 1", s.Open)
		}
	})
}
