package document

import (
	"mime"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tenantry/tenantry"
)

const (
	maxFilenameLen = 255
	maxMimeTypeLen = 100
	// DefaultMimeType is stored when a client names no type.
	DefaultMimeType = "application/octet-stream"
)

// mimeType is RFC 6838's restricted-name grammar for type/subtype, without
// parameters.
var mimeType = regexp.MustCompile(`^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$`)

// ValidFilename checks a document's filename and returns it trimmed. Path
// separators and control characters are refused outright (they could
// escape a directory or break a header), as are the invisible characters
// that reorder text and disguise an extension.
func ValidFilename(errs tenantry.FieldErrors, field, value string) string {
	name := strings.TrimSpace(value)
	switch {
	case name == "":
		errs.Add(field, "Filename is required")
	case !utf8.ValidString(name):
		errs.Add(field, "Filename must be valid UTF-8")
	case utf8.RuneCountInString(name) > maxFilenameLen:
		errs.Add(field, "Length must be between 1 and 255.")
	case strings.ContainsAny(name, `/\`):
		errs.Add(field, `Filename cannot contain path separators (/ or \)`)
	case name == "." || name == "..":
		errs.Add(field, "Filename cannot be . or ..")
	case strings.ContainsFunc(name, forbiddenRune):
		errs.Add(field, "Filename cannot contain control or text-direction characters")
	}
	return name
}

func forbiddenRune(r rune) bool {
	if unicode.IsControl(r) {
		return true
	}
	switch {
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0xFEFF:
		return true
	}
	return false
}

// ValidMimeType checks an explicitly given MIME type and returns it
// lower-cased. Parameters ("; charset=...") are refused, as the original
// platform did.
func ValidMimeType(errs tenantry.FieldErrors, field, value string) string {
	t := strings.ToLower(strings.TrimSpace(value))
	switch {
	case t == "":
		errs.Add(field, "MIME type is required")
	case len(t) > maxMimeTypeLen:
		errs.Add(field, "Length must be between 1 and 100.")
	case !mimeType.MatchString(t):
		errs.Add(field, "Not a valid MIME type (type/subtype, without parameters)")
	}
	return t
}

// PartMimeType derives a MIME type from a multipart part's Content-Type
// header, dropping parameters; anything unusable becomes the default.
func PartMimeType(header string) string {
	t, _, err := mime.ParseMediaType(header)
	t = strings.ToLower(t)
	if err != nil || len(t) > maxMimeTypeLen || !mimeType.MatchString(t) {
		return DefaultMimeType
	}
	return t
}

// ContentDisposition returns an RFC 6266 attachment header value for any
// stored filename: an ASCII fallback in filename= with everything that could
// break the quoted string replaced, and the exact name in filename*= as
// RFC 5987 UTF-8.
func ContentDisposition(filename string) string {
	var fallback strings.Builder
	for _, r := range filename {
		switch {
		case r < 0x20 || r == 0x7F || r == '"' || r == '\\' || r > 0x7E:
			fallback.WriteByte('_')
		default:
			fallback.WriteRune(r)
		}
	}
	var encoded strings.Builder
	for i := 0; i < len(filename); i++ {
		c := filename[i]
		if isAttrChar(c) {
			encoded.WriteByte(c)
		} else {
			const hex = "0123456789ABCDEF"
			encoded.WriteByte('%')
			encoded.WriteByte(hex[c>>4])
			encoded.WriteByte(hex[c&15])
		}
	}
	return `attachment; filename="` + fallback.String() + `"; filename*=UTF-8''` + encoded.String()
}

// isAttrChar reports whether c may appear unencoded in an RFC 5987 value.
func isAttrChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
