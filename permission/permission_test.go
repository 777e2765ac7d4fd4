package permission_test

import (
	"slices"
	"testing"

	"github.com/tenantry/tenantry/permission"
)

func TestParse(t *testing.T) {
	s, err := permission.Parse([]string{"documents:read", "documents:update:own", "documents:update:own"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.AllowsAll(permission.DocumentsRead) || s.AllowsAll(permission.DocumentsUpdate) || !s.Allows(permission.DocumentsUpdate) {
		t.Fatalf("parsed %v", s.Strings())
	}
	// The wider grant wins whatever the order.
	if s, _ := permission.Parse([]string{"documents:delete", "documents:delete:own"}); !s.AllowsAll(permission.DocumentsDelete) {
		t.Fatalf("documents:delete with :own too: %v", s.Strings())
	}
	for _, bad := range [][]string{{"documents:fly"}, {"tenant:delete:own"}, {""}, {"documents:read:mine"}} {
		if _, err := permission.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestBuiltInRolesNest(t *testing.T) {
	admin, _ := permission.BuiltIn(permission.Admin)
	user, _ := permission.BuiltIn(permission.User)
	viewer, _ := permission.BuiltIn(permission.Viewer)
	if !admin.Covers(user) || !user.Covers(viewer) || viewer.Covers(user) || user.Covers(admin) {
		t.Fatal("the built-in roles do not nest admin ⊇ user ⊇ viewer")
	}
	if got := viewer.Missing(user); !slices.Equal(got, []string{"documents:create", "documents:delete:own", "documents:update:own"}) {
		t.Fatalf("what a viewer lacks of a user: %v", got)
	}
	if len(admin.Strings()) != len(permission.Catalogue) {
		t.Fatalf("admin grants %d permissions of %d", len(admin.Strings()), len(permission.Catalogue))
	}
	if permission.BuiltInRank(permission.Admin) <= permission.BuiltInRank(permission.User) || permission.BuiltInRank("auditor") != 0 {
		t.Fatal("built-in ranks out of order")
	}
}
