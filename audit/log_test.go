package audit_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/audit/audittest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
)

// openControl returns a migrated control database of shape and a function
// that opens another handle on the same database, as a second process
// would.
func openControl(t *testing.T, shape config.Shape) (sqldb.DB, func() sqldb.DB) {
	t.Helper()
	cfg := apptest.Config(t, shape)
	return apptest.Engines(t, cfg).Control, func() sqldb.DB { return apptest.Engines(t, cfg).Control }
}

// testKey signs chain heads in tests.
var testKey = []byte("audit test key, not the attacker's") //nolint:gochecknoglobals // read-only

func entry(chain, action string) *audit.Entry {
	return &audit.Entry{Chain: chain, Action: action, Outcome: audit.OutcomeSuccess, ActorID: "actor", RequestID: "req"}
}

func appendN(t *testing.T, l *audit.Log, chain string, n int) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	for i := range n {
		e := entry(chain, fmt.Sprintf("test.action%d", i+1))
		e.Details = json.RawMessage(fmt.Sprintf(`{ "n" : %d }`, i+1))
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		out = append(out, *e)
	}
	return out
}

// Ensure appends number a chain from 1, link each entry to the one before
// and store exactly what was hashed.
func TestAppendChainsEntries(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		before := sqldb.Now()
		entries := appendN(t, l, "chain-a", 3)
		other := appendN(t, l, audit.PlatformChain, 1)
		prev := audit.GenesisHash
		for i, e := range entries {
			if e.Seq != int64(i+1) || e.PrevHash != prev || len(e.Hash) != 64 || e.ID == "" || e.OccurredAt.Before(before) {
				t.Fatalf("entry %d = %+v", i, e)
			}
			if string(e.Details) != fmt.Sprintf(`{"n":%d}`, i+1) {
				t.Fatalf("details are not compacted: %s", e.Details)
			}
			prev = e.Hash
		}
		if other[0].Seq != 1 || other[0].PrevHash != audit.GenesisHash {
			t.Fatalf("chains share a sequence: %+v", other[0])
		}

		list, total, err := l.List(t.Context(), "chain-a", audit.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if total != 3 || len(list) != 3 || list[0].Seq != 3 || list[2].Seq != 1 {
			t.Fatalf("list = %d %+v", total, list)
		}
		got, want := list[2], entries[0]
		if !got.OccurredAt.Equal(want.OccurredAt) || got.Hash != want.Hash || string(got.Details) != string(want.Details) ||
			got.Action != want.Action || got.ActorID != want.ActorID {
			t.Fatalf("read back %+v, wrote %+v", got, want)
		}
		for _, chain := range []string{"chain-a", audit.PlatformChain, "never-written"} {
			v, err := l.Verify(t.Context(), chain)
			if err != nil {
				t.Fatal(err)
			}
			if !v.Intact || v.FirstBroken != nil || v.Chain != chain {
				t.Fatalf("clean chain %s: %+v %+v", chain, v, v.FirstBroken)
			}
		}
		chains, err := l.Chains(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(chains, ",") != "platform,chain-a" {
			t.Fatalf("chains = %v", chains)
		}
	})
}

// Ensure the hash is the documented function of the stored values, so that
// a verifier written from the documentation (this value was computed by
// one in Python) agrees with tenantry.
func TestHashIsDocumented(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		actor := "a1b2c3d4-0000-4000-8000-000000000001"
		e := &audit.Entry{
			ID: "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", Chain: audit.PlatformChain,
			OccurredAt: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
			ActorID:    actor, Action: "auth.login", TargetType: "user", TargetID: actor, Outcome: audit.OutcomeSuccess,
			ClientIP: "192.0.2.1", UserAgent: "curl/8.5.0 é", RequestID: "req-1",
			Details: json.RawMessage(`{"email": "ada@example.com", "status": 200}`),
		}
		if err := audit.NewLog(db, testKey, nil).Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if want := "43fb5417ae1a2fda8c6f4911f524ad2ad6355350d528986a92c86fab480f750d"; e.Hash != want {
			t.Fatalf("hash = %s, want %s", e.Hash, want)
		}
	})
}

// Ensure Verify finds each kind of tampering and names the first entry
// concerned.
func TestVerifyFindsTampering(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		for _, tc := range []struct {
			name    string
			tamper  []string // statements with $1 = the chain
			seq     int64
			entry   int64 // the original seq of the entry reported, when not seq
			noID    bool
			because string
		}{
			{name: "edited action", tamper: []string{`UPDATE audit_log SET action = 'test.other' WHERE chain = $1 AND seq = 3`}, seq: 3, because: "altered"},
			{name: "edited details", tamper: []string{`UPDATE audit_log SET details = '{"n":30}' WHERE chain = $1 AND seq = 3`}, seq: 3, because: "altered"},
			{name: "edited actor", tamper: []string{`UPDATE audit_log SET actor_id = '' WHERE chain = $1 AND seq = 5`}, seq: 5, because: "altered"},
			{name: "deleted from the middle", tamper: []string{`DELETE FROM audit_log WHERE chain = $1 AND seq = 3`}, seq: 4, because: "deleted"},
			{name: "deleted first", tamper: []string{`DELETE FROM audit_log WHERE chain = $1 AND seq = 1`}, seq: 2, because: "deleted"},
			{name: "deleted last", tamper: []string{`DELETE FROM audit_log WHERE chain = $1 AND seq = 5`}, seq: 5, noID: true, because: "deleted"},
			{name: "deleted all", tamper: []string{`DELETE FROM audit_log WHERE chain = $1`}, seq: 1, noID: true, because: "deleted"},
			{name: "deleted last with its head rewound", tamper: []string{
				`DELETE FROM audit_log WHERE chain = $1 AND seq = 5`,
				`UPDATE audit_chains SET last_seq = 4 WHERE chain = $1`,
			}, seq: 4, because: "replaced"},
			{name: "head deleted", tamper: []string{`DELETE FROM audit_chains WHERE chain = $1`}, seq: 5, because: "no head"},
			{name: "renumbered", tamper: []string{
				`DELETE FROM audit_log WHERE chain = $1 AND seq = 3`,
				`UPDATE audit_log SET seq = 3 WHERE chain = $1 AND seq = 4`,
			}, seq: 3, entry: 4, because: "altered"},
			{name: "entry added behind the head", tamper: []string{`UPDATE audit_chains SET last_seq = 3 WHERE chain = $1`}, seq: 4, because: "head"},
		} {
			chain := strings.ReplaceAll(tc.name, " ", "-")
			entries := appendN(t, l, chain, 5)
			for _, stmt := range tc.tamper {
				audittest.Tamper(t, db, chain, stmt, chain)
			}
			v, err := l.Verify(t.Context(), chain)
			if err != nil {
				t.Fatal(err)
			}
			b := v.FirstBroken
			if v.Intact || b == nil {
				t.Errorf("%s: not detected: %+v", tc.name, v)
				continue
			}
			wantID := entries[cmp.Or(tc.entry, tc.seq)-1].ID
			if tc.noID {
				wantID = ""
			}
			if b.Seq != tc.seq || b.ID != wantID || !strings.Contains(b.Reason, tc.because) {
				t.Errorf("%s: first broken = %+v, want seq %d id %q because %q", tc.name, *b, tc.seq, wantID, tc.because)
			}
		}
	})
}

// Ensure that rewriting a chain so that every hash recomputes, as anyone
// who knows the documented hash could, is still caught: the chain head's
// signature needs the key, which is not in the database.
func TestRewritingAChainNeedsTheKey(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		appendN(t, l, "rewritten", 5)
		for _, stmt := range []string{`DELETE FROM audit_log WHERE chain = $1`, `DELETE FROM audit_chains WHERE chain = $1`} {
			audittest.Tamper(t, db, "rewritten", stmt, "rewritten")
		}
		forger := audit.NewLog(db, []byte("a key the forger chose"), nil)
		appendN(t, forger, "rewritten", 5)
		if v, err := forger.Verify(t.Context(), "rewritten"); err != nil || !v.Intact {
			t.Fatalf("the forged chain is not even self-consistent: %+v, %v", v, err)
		}
		v, err := l.Verify(t.Context(), "rewritten")
		if err != nil {
			t.Fatal(err)
		}
		if v.Intact || v.FirstBroken == nil || !strings.Contains(v.FirstBroken.Reason, "signature") {
			t.Fatalf("a chain rewritten without the key verifies: %+v", v)
		}
	})
}

// Ensure concurrent appends from two handles on one database, standing for
// two processes, each get their own seq and leave a valid chain.
func TestConcurrentAppends(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, open := openControl(t, shape)
		logs := []*audit.Log{audit.NewLog(db, testKey, nil), audit.NewLog(open(), testKey, nil)}
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				e := entry("busy", fmt.Sprintf("test.concurrent%d", i))
				errs <- logs[i%2].Append(context.Background(), e)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		v, err := logs[0].Verify(t.Context(), "busy")
		if err != nil {
			t.Fatal(err)
		}
		if !v.Intact || v.Entries != n {
			t.Fatalf("verification = %+v %+v", v, v.FirstBroken)
		}
		list, total, err := logs[1].List(t.Context(), "busy", audit.Filter{PerPage: n})
		if err != nil {
			t.Fatal(err)
		}
		actions := map[string]bool{}
		for i, e := range list {
			if e.Seq != int64(n-i) {
				t.Fatalf("seq %d at position %d", e.Seq, i)
			}
			actions[e.Action] = true
		}
		if total != n || len(actions) != n {
			t.Fatalf("%d entries, %d distinct actions", total, len(actions))
		}
	})
}

// Ensure listings filter by actor, action and time and page newest first.
func TestListFilters(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 10 {
			e := entry("c", "test.even")
			if i%2 == 1 {
				e.Action = "test.odd"
			}
			e.ActorID = fmt.Sprintf("user-%d", i%3)
			e.OccurredAt = base.Add(time.Duration(i) * time.Hour)
			if err := l.Append(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		appendN(t, l, "other", 3)

		seqs := func(f audit.Filter) (string, int64) {
			t.Helper()
			list, total, err := l.List(t.Context(), "c", f)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, e := range list {
				s = append(s, fmt.Sprint(e.Seq))
			}
			return strings.Join(s, ","), total
		}
		for _, tc := range []struct {
			f     audit.Filter
			want  string
			total int64
		}{
			{audit.Filter{}, "10,9,8,7,6,5,4,3,2,1", 10},
			{audit.Filter{Action: "test.odd"}, "10,8,6,4,2", 5},
			{audit.Filter{ActorID: "user-0"}, "10,7,4,1", 4},
			{audit.Filter{ActorID: "user-0", Action: "test.even"}, "7,1", 2},
			{audit.Filter{From: base.Add(7 * time.Hour)}, "10,9,8", 3},
			{audit.Filter{To: base.Add(2 * time.Hour)}, "2,1", 2},
			{audit.Filter{From: base.Add(2 * time.Hour), To: base.Add(4 * time.Hour)}, "4,3", 2},
			{audit.Filter{PerPage: 3}, "10,9,8", 10},
			{audit.Filter{PerPage: 3, Page: 4}, "1", 10},
			{audit.Filter{PerPage: 3, Page: 5}, "", 10},
			{audit.Filter{Action: "nothing"}, "", 0},
		} {
			if got, total := seqs(tc.f); got != tc.want || total != tc.total {
				t.Errorf("%+v: seqs %q of %d, want %q of %d", tc.f, got, total, tc.want, tc.total)
			}
		}
	})
}

// Ensure entries are checked, and values cut to storable form before they
// are hashed, so that odd input still verifies.
func TestAppendValidatesAndCleans(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		for _, bad := range []*audit.Entry{
			{Chain: "", Action: "a", Outcome: audit.OutcomeSuccess},
			{Chain: "c", Action: "", Outcome: audit.OutcomeSuccess},
			{Chain: "c", Action: "a", Outcome: "maybe"},
			{Chain: "c", Action: "a", Outcome: audit.OutcomeSuccess, Details: json.RawMessage(`[1]`)},
			{Chain: "c", Action: "a", Outcome: audit.OutcomeSuccess, Details: json.RawMessage(`{"a":`)},
		} {
			if err := l.Append(t.Context(), bad); err == nil {
				t.Errorf("appended %+v", bad)
			}
		}
		e := entry("c", "test.odd")
		e.UserAgent = "agent\x00with nul \xff" + strings.Repeat("é", 400)
		e.Details = json.RawMessage(`{"s":"\u0000"}`)
		if err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(e.UserAgent, 0) || len(e.UserAgent) > 512 || !strings.HasPrefix(e.UserAgent, "agentwith nul \uFFFD") {
			t.Fatalf("user agent stored as %q", e.UserAgent)
		}
		v, err := l.Verify(t.Context(), "c")
		if err != nil {
			t.Fatal(err)
		}
		if !v.Intact || v.Entries != 1 {
			t.Fatalf("verification = %+v", v)
		}
	})
}

// Ensure a walk from page to page by position returns every matching
// entry once, newest first, counts only on its first page, and says on
// its last page that nothing follows.
func TestListPageWalksByPosition(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		for i := range 7 {
			e := entry("walk", "test.odd")
			if i%2 == 1 {
				e.Action = "test.even"
			}
			if err := l.Append(t.Context(), e); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			action string
			want   string
			total  int64
		}{{"", "7,6,5,4,3,2,1", 7}, {"test.odd", "7,5,3,1", 4}, {"test.even", "6,4,2", 3}} {
			var seqs []string
			f := audit.Filter{Action: c.action, PerPage: 2}
			for n := 1; ; n++ {
				p, err := l.ListPage(t.Context(), "walk", f)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int64{true: c.total, false: -1}[n == 1]; p.Total != want {
					t.Errorf("%q page %d: total %d, want %d", c.action, n, p.Total, want)
				}
				for _, e := range p.Entries {
					seqs = append(seqs, fmt.Sprint(e.Seq))
				}
				if p.NextBeforeSeq == 0 {
					break
				}
				if n > 10 {
					t.Fatalf("%q: the walk does not end", c.action)
				}
				f.BeforeSeq = p.NextBeforeSeq
			}
			if got := strings.Join(seqs, ","); got != c.want {
				t.Errorf("%q: walked %s, want %s", c.action, got, c.want)
			}
		}
	})
}
