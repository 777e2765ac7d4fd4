package api

import (
	"context"
	"errors"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Rules every handler's input follows, declared once and enforced by huma
// before a handler runs, so that the services and the stores under them
// see one spelling of an id, pages they can compute an offset for, and text
// any database accepts. The OpenAPI document states them as patterns and
// bounds.

// idPattern is the one spelling of an id tenantry accepts: the canonical
// 8-4-4-4-12 hex form, in either case. UUID parsers accept more (urn:uuid:
// prefixes, braces, no hyphens); such spellings would reach the stores and
// be refused by one engine and not the other.
const idPattern = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`

// canonicalID returns s lower-cased when it is an id in canonical form.
func canonicalID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return "", false
		}
	}
	return strings.ToLower(s), true
}

var errNotCanonicalID = errors.New("expected an id in canonical form (8-4-4-4-12 hexadecimal digits)")

// resourceID is an id read from a path, a query or a body. It is checked
// and lower-cased as it is read, so handlers never see another form.
type resourceID struct{ value string }

// UnmarshalText implements encoding.TextUnmarshaler, which huma uses for
// parameters and encoding/json for bodies.
func (id *resourceID) UnmarshalText(b []byte) error {
	v, ok := canonicalID(string(b))
	if !ok {
		return errNotCanonicalID
	}
	id.value = v
	return nil
}

// Schema implements huma.SchemaProvider.
func (resourceID) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{
		Type:               huma.TypeString,
		Format:             "uuid",
		Pattern:            idPattern,
		PatternDescription: "an id in canonical form (8-4-4-4-12 hexadecimal digits)",
		Description:        "Canonical 8-4-4-4-12 hexadecimal form, either case.",
	}
}

// String returns the id in lower case, or "" when none was given.
func (id resourceID) String() string { return id.value }

// textPattern refuses the C0 control characters and DEL. Go's regexp and
// ECMAScript's (which OpenAPI validators use) read the escapes alike.
const textPattern = `^[^\x00-\x1F\x7F]*$`

// text is a string a client names or searches something with: a name, an
// email, a filename, a MIME type, a filter. Control characters have no
// place there, could forge log lines or headers, and PostgreSQL refuses NUL
// outright, so they are refused before any service sees the value.
type text string

// Schema implements huma.SchemaProvider.
func (text) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeString, Pattern: textPattern, PatternDescription: "text without control characters"}
}

// Paging selects a page of a listing. Pages are bounded so that
// (page-1)*per_page cannot overflow an offset; no listing has a millionth
// page worth reading. It is exported because huma reads parameters only
// from exported embedded structs.
type Paging struct {
	Page    int `query:"page" minimum:"1" maximum:"1000000" default:"1" doc:"Page number, from 1 to 1000000."`
	PerPage int `query:"per_page" minimum:"1" maximum:"100" default:"20" doc:"Items per page, from 1 to 100."`
}

// CursorPaging selects a page of a listing that may also be walked by
// cursor: the next_cursor of one page asks for the page after it, found by
// seeking to the last row returned, which costs what the first page costs
// however deep the walk goes. It is exported because huma reads parameters
// only from exported embedded structs.
type CursorPaging struct {
	Paging
	Cursor string `query:"cursor" maxLength:"1024" pattern:"^[A-Za-z0-9_-]*$" patternDescription:"a next_cursor value" doc:"The next_cursor of the previous page, to get the page after it. Valid only with the same sort and filters, for the same tenant; not with page > 1."`
}

// TenantPath is the path parameter every tenant route starts with. It is
// exported because huma only reads parameters from exported embedded
// structs.
type TenantPath struct {
	TenantID resourceID `path:"tenant_id" doc:"Tenant id."`
}

// id returns the tenant id and notes it for the access log.
func (p TenantPath) id(ctx context.Context) string {
	id := p.TenantID.String()
	if info := infoFrom(ctx); info != nil {
		info.tenantID = id
	}
	return id
}

// MemberPath names one member of a tenant.
type MemberPath struct {
	TenantPath
	UserID resourceID `path:"user_id" doc:"User id."`
}

// DocumentPath names one document of a tenant.
type DocumentPath struct {
	TenantPath
	DocumentID resourceID `path:"document_id" doc:"Document id."`
}

// FilePath names one file of a tenant.
type FilePath struct {
	TenantPath
	FileID resourceID `path:"file_id" doc:"File id."`
}
