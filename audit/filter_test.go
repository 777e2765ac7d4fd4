package audit_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/config"
)

// Ensure a subject's entries are those it acted in or whose target is its
// account, in every chain, newest first by time, narrowed to a set of
// actions and to the failures of others.
func TestListSubject(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		db, _ := openControl(t, shape)
		l := audit.NewLog(db, testKey, nil)
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		for i, e := range []struct{ chain, actor, action, targetType, target, outcome string }{
			{audit.PlatformChain, "ada", "auth.login", "", "", audit.OutcomeSuccess},                // 0: hers
			{audit.PlatformChain, "bob", "auth.login", "", "", audit.OutcomeSuccess},                // 1: his
			{"tenant-1", "ada", "auth.sso.login", "user", "ada", audit.OutcomeSuccess},              // 2: hers, another chain
			{audit.PlatformChain, "root", "admin.impersonate", "user", "ada", audit.OutcomeSuccess}, // 3: done to her
			{audit.PlatformChain, "root", "admin.impersonate", "user", "bob", audit.OutcomeSuccess}, // 4: done to him
			{audit.PlatformChain, "bob", "auth.login", "tenant", "ada", audit.OutcomeSuccess},       // 5: a tenant named like her
			{audit.PlatformChain, "ada", "auth.refresh", "session", "s1", audit.OutcomeSuccess},     // 6: routine
			{audit.PlatformChain, "ada", "auth.refresh", "session", "s1", audit.OutcomeDenied},      // 7: refused
			{audit.PlatformChain, "ada", "document.upload", "", "", audit.OutcomeSuccess},           // 8: not in the set
		} {
			err := l.Append(t.Context(), &audit.Entry{Chain: e.chain, ActorID: e.actor, Action: e.action, TargetType: e.targetType,
				TargetID: e.target, Outcome: e.outcome, RequestID: fmt.Sprint(i), OccurredAt: base.Add(time.Duration(i) * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
		}
		list := func(f audit.Filter) (string, int64) {
			t.Helper()
			page, err := l.ListSubject(t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, e := range page.Entries {
				s = append(s, e.RequestID)
			}
			return strings.Join(s, ","), page.Total
		}
		set := []string{"auth.login", "auth.sso.login", "admin.impersonate"}
		for _, tc := range []struct {
			f     audit.Filter
			want  string
			total int64
		}{
			{audit.Filter{Subject: "ada"}, "8,7,6,3,2,0", 6},
			{audit.Filter{Subject: "ada", Actions: set}, "3,2,0", 3},
			{audit.Filter{Subject: "ada", Actions: set, FailedActions: []string{"auth.refresh"}}, "7,3,2,0", 4},
			{audit.Filter{Subject: "ada", FailedActions: []string{"auth.refresh"}}, "7", 1},
			{audit.Filter{Subject: "bob", Actions: set}, "5,4,1", 3},
			{audit.Filter{Subject: "ada", Actions: set, PerPage: 2, Page: 2}, "0", 3},
			{audit.Filter{Subject: "ada", Actions: set, PerPage: 2, Page: 3}, "", 3},
			{audit.Filter{Subject: "nobody"}, "", 0},
		} {
			if got, total := list(tc.f); got != tc.want || total != tc.total {
				t.Errorf("%+v: entries %q of %d, want %q of %d", tc.f, got, total, tc.want, tc.total)
			}
		}
		// The same filters on one chain.
		entries, total, err := l.List(t.Context(), audit.PlatformChain, audit.Filter{Subject: "ada", Actions: set})
		if err != nil || total != 2 || len(entries) != 2 || entries[0].RequestID != "3" || entries[1].RequestID != "0" {
			t.Errorf("ada's platform entries: %d %+v %v", total, entries, err)
		}
		for _, f := range []audit.Filter{{}, {Subject: "ada", BeforeSeq: 3}} {
			if _, err := l.ListSubject(t.Context(), f); err == nil {
				t.Errorf("ListSubject(%+v) listed", f)
			}
		}
	})
}
