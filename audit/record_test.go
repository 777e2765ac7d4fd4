package audit_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/audit"
)

// Ensure the record helpers fill in the context's record and do nothing
// when there is none.
func TestRecord(t *testing.T) {
	t.Parallel()
	// Without a record, nothing happens and nothing panics.
	bare := context.Background()
	audit.Annotate(bare, "k", 1)
	audit.SetActor(bare, "u")
	audit.SetTarget(bare, "document", "d")
	audit.SetTenant(bare, "t")
	audit.SetAction(bare, "a")

	ctx, rec := audit.NewContext(context.Background())
	if rec.ActorID() != "" || rec.Action() != "" || rec.TenantID() != "" || rec.Details() != nil {
		t.Fatal("a new record is not empty")
	}
	type role struct {
		Role string `json:"role"`
	}
	before := &role{Role: "user"}
	audit.Annotate(ctx, "before", before)
	before.Role = "admin" // the annotation keeps the value it had
	audit.Annotate(ctx, "after", before)
	audit.Annotate(ctx, "bad", make(chan int))
	audit.SetActor(ctx, "u1")
	audit.SetTarget(ctx, "user", "u2")
	audit.SetTenant(ctx, "t1")
	audit.SetAction(ctx, "auth.lockout")

	d := rec.Details()
	if string(d["before"]) != `{"role":"user"}` || string(d["after"]) != `{"role":"admin"}` || !strings.Contains(string(d["bad"]), "unencodable chan int") {
		t.Fatalf("details = %s %s %s", d["before"], d["after"], d["bad"])
	}
	typ, id := rec.Target()
	if rec.ActorID() != "u1" || typ != "user" || id != "u2" || rec.TenantID() != "t1" || rec.Action() != "auth.lockout" {
		t.Fatalf("record = %s %s %s %s %s", rec.ActorID(), typ, id, rec.TenantID(), rec.Action())
	}
	// Details returns a copy.
	d["after"] = nil
	if rec.Details()["after"] == nil {
		t.Fatal("Details shares its map")
	}
}
