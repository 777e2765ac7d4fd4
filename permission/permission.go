// Package permission is the catalogue of what a member may do in a tenant:
// resource:action permissions, some of which may be granted for the
// member's own resources only ("documents:update:own"), and the built-in
// roles admin, user and viewer as sets of them. Custom roles are sets too;
// every authorization decision asks a set whether it allows a permission.
package permission

import (
	"fmt"
	"slices"
	"strings"
)

// Permission is an action on a kind of resource, as "resource:action".
type Permission string

// The catalogue's permissions.
const (
	TenantRead          Permission = "tenant:read"
	TenantUpdate        Permission = "tenant:update"
	TenantDelete        Permission = "tenant:delete"
	MembersRead         Permission = "members:read"
	MembersAdd          Permission = "members:add"
	MembersUpdate       Permission = "members:update"
	MembersRemove       Permission = "members:remove"
	RolesRead           Permission = "roles:read"
	RolesManage         Permission = "roles:manage"
	DocumentsCreate     Permission = "documents:create"
	DocumentsRead       Permission = "documents:read"
	DocumentsUpdate     Permission = "documents:update"
	DocumentsDelete     Permission = "documents:delete"
	DocumentsDownload   Permission = "documents:download"
	FilesRead           Permission = "files:read"
	FilesDelete         Permission = "files:delete"
	StorageRead         Permission = "storage:read"
	AuditRead           Permission = "audit:read"
	EventsRead          Permission = "events:read"
	SSOManage           Permission = "sso:manage"
	TimestampingManage  Permission = "timestamping:manage"
	ownSuffix                      = ":own"
	maxPermissionsInSet            = 64
)

// Definition describes one permission of the catalogue.
type Definition struct {
	Permission  Permission
	Description string
	// Ownable permissions may be granted for the member's own
	// resources only.
	Ownable bool
}

// Catalogue is every permission there is.
var Catalogue = []Definition{
	{TenantRead, "See the tenant and belong to it", false},
	{TenantUpdate, "Rename or deactivate the tenant", false},
	{TenantDelete, "Delete the tenant", false},
	{MembersRead, "See the tenant's members", false},
	{MembersAdd, "Add members", false},
	{MembersUpdate, "Change members' roles", false},
	{MembersRemove, "Remove members", false},
	{RolesRead, "See the tenant's roles", false},
	{RolesManage, "Create, change and delete custom roles", false},
	{DocumentsCreate, "Upload documents", false},
	{DocumentsRead, "List and see documents", false},
	{DocumentsUpdate, "Rename documents, or with :own only one's own", true},
	{DocumentsDelete, "Delete documents, or with :own only one's own", true},
	{DocumentsDownload, "Download documents and make download links", false},
	{FilesRead, "List and see stored files", false},
	{FilesDelete, "Delete files no document uses", false},
	{StorageRead, "See storage use and quotas", false},
	{AuditRead, "Read and verify the tenant's audit trail", false},
	{EventsRead, "Read the tenant's event stream", false},
	{SSOManage, "Configure single sign-on and domains", false},
	{TimestampingManage, "Configure and request trusted timestamps", false},
}

// Defined reports whether p is in the catalogue.
func Defined(p Permission) bool { return definition(p) != nil }

func definition(p Permission) *Definition {
	for i := range Catalogue {
		if Catalogue[i].Permission == p {
			return &Catalogue[i]
		}
	}
	return nil
}

// Scope is how far a granted permission reaches.
type Scope uint8

// Scopes, from least to most.
const (
	None Scope = iota
	Own
	All
)

// Set is the permissions of a role, each with its scope.
type Set map[Permission]Scope

// Allows reports whether the set grants p, on one's own resources at least.
func (s Set) Allows(p Permission) bool { return s[p] >= Own }

// AllowsAll reports whether the set grants p on every resource.
func (s Set) AllowsAll(p Permission) bool { return s[p] == All }

// Covers reports whether s grants everything other grants, as far.
func (s Set) Covers(other Set) bool {
	for p, scope := range other {
		if s[p] < scope {
			return false
		}
	}
	return true
}

// Missing lists what other grants beyond s, written as Parse reads them.
func (s Set) Missing(other Set) []string {
	var out []string
	for p, scope := range other {
		if s[p] < scope {
			out = append(out, grant(p, scope))
		}
	}
	slices.Sort(out)
	return out
}

// Strings lists the set as Parse reads it, sorted.
func (s Set) Strings() []string {
	out := make([]string, 0, len(s))
	for p, scope := range s {
		if scope > None {
			out = append(out, grant(p, scope))
		}
	}
	slices.Sort(out)
	return out
}

func grant(p Permission, scope Scope) string {
	if scope == Own {
		return string(p) + ownSuffix
	}
	return string(p)
}

// Parse reads a list of permissions ("documents:read",
// "documents:update:own"), naming the first it refuses.
func Parse(list []string) (Set, error) {
	if len(list) > maxPermissionsInSet {
		return nil, fmt.Errorf("at most %d permissions", maxPermissionsInSet)
	}
	s := Set{}
	for _, g := range list {
		name, own := strings.CutSuffix(g, ownSuffix)
		d := definition(Permission(name))
		switch {
		case d == nil:
			return nil, fmt.Errorf("%q is not a permission", g)
		case own && !d.Ownable:
			return nil, fmt.Errorf("%q: %s cannot be limited to one's own resources", g, name)
		}
		scope := All
		if own {
			scope = Own
		}
		s[d.Permission] = max(s[d.Permission], scope)
	}
	return s, nil
}

// Built-in roles.
const (
	Admin  = "admin"
	User   = "user"
	Viewer = "viewer"
)

// BuiltIn returns the permissions of a built-in role. The set is shared by
// every caller, since every tenant request reads one: it must not be
// modified.
func BuiltIn(role string) (Set, bool) {
	s, ok := builtIn[role]
	return s, ok
}

var builtIn = map[string]Set{ //nolint:gochecknoglobals // read-only table, built once
	Admin:  adminSet(),
	User:   userSet(),
	Viewer: viewerSet(),
}

func adminSet() Set {
	s := Set{}
	for _, d := range Catalogue {
		s[d.Permission] = All
	}
	return s
}

func userSet() Set {
	s := viewerSet()
	s[DocumentsCreate] = All
	s[DocumentsUpdate] = Own
	s[DocumentsDelete] = Own
	return s
}

func viewerSet() Set {
	return Set{TenantRead: All, MembersRead: All, RolesRead: All, DocumentsRead: All, DocumentsDownload: All,
		FilesRead: All, StorageRead: All}
}

// BuiltInRoles are the built-in roles, most privileged first.
var BuiltInRoles = []string{Admin, User, Viewer}

// IsBuiltIn reports whether role is a built-in role's name.
func IsBuiltIn(role string) bool { return slices.Contains(BuiltInRoles, role) }

// BuiltInRank orders the built-in roles, admin highest, for choosing the
// highest of several; 0 for any other role.
func BuiltInRank(role string) int {
	if i := slices.Index(BuiltInRoles, role); i >= 0 {
		return len(BuiltInRoles) - i
	}
	return 0
}
