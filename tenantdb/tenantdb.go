// Package tenantdb manages the databases that hold each tenant's data: how
// they are named, created and dropped (through an Engine), and how they are
// opened on demand and shared under one global cap on connections, so that
// ten thousand tenants never mean ten thousand connection pools.
package tenantdb

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/tenantry/tenantry/sqldb"
)

// Errors reported by engines.
var (
	ErrExists   = errors.New("tenant database already exists")
	ErrNotExist = errors.New("tenant database does not exist")
)

// Engine creates, drops and opens the tenant databases of one SQL engine,
// on the servers it knows.
type Engine interface {
	// Create makes a new, empty database; ErrExists if the name is taken.
	Create(ctx context.Context, ref Ref) error
	// Drop removes a database and its data; dropping an absent one is not
	// an error.
	Drop(ctx context.Context, ref Ref) error
	Exists(ctx context.Context, ref Ref) (bool, error)
	// Open connects to an existing database with at most maxConns
	// connections; ErrNotExist if there is none.
	Open(ctx context.Context, ref Ref, maxConns int) (sqldb.DB, error)
	// Migrations returns the tenant schema's migrations for this engine.
	Migrations() fs.FS
}

// MaxNameLength is PostgreSQL's identifier limit, which every name respects so
// that tenants can move between engines.
const MaxNameLength = 63

const (
	namePrefix  = "tenant_"
	shortIDLen  = 8
	maxSlugLen  = MaxNameLength - len(namePrefix) - 1 - shortIDLen
	idHexDigits = 32
)

var validName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// ValidName reports whether name is safe to use as a database or file name:
// lower-case ASCII letters, digits and underscores, at most 63 bytes.
func ValidName(name string) bool { return validName.MatchString(name) }

// Name derives a tenant database name, tenant_<slug>_<short-id>, from the
// tenant's display name and id. Accents are folded to ASCII, anything else
// outside [a-z0-9] becomes an underscore, and the slug is cut so that the
// whole name fits in 63 bytes.
func Name(displayName, tenantID string) string {
	hexID := strings.ReplaceAll(strings.ToLower(tenantID), "-", "")
	// The tail of a UUID is random in every version, its head is not (v7).
	short := hexID
	if len(hexID) >= idHexDigits {
		short = hexID[len(hexID)-shortIDLen:]
	}
	slug := slugify(displayName)
	if slug == "" {
		return namePrefix + short
	}
	return namePrefix + slug + "_" + short
}

func slugify(s string) string {
	var b strings.Builder
	underscore := false
	for _, r := range norm.NFKD.String(strings.ToLower(s)) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// Combining marks left by decomposition: drop them, so that
			// "é" becomes "e" rather than "_".
			continue
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
			underscore = false
		default:
			if !underscore && b.Len() > 0 {
				b.WriteByte('_')
				underscore = true
			}
		}
		if b.Len() >= maxSlugLen {
			break
		}
	}
	return strings.Trim(b.String()[:min(b.Len(), maxSlugLen)], "_")
}
