package account

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tenantry/tenantry"
)

// Limits on account fields, as the original platform enforced them (plus a
// password maximum, so that no hash function silently truncates).
const (
	maxNameLen      = 100
	maxEmailLen     = 255
	minPasswordLen  = 8
	maxPasswordLen  = 128
	maxLoginPassLen = 1024
)

// name validates and trims a first or last name; label is "First name" or
// "Last name".
func name(errs tenantry.FieldErrors, field, label, value string) string {
	trimmed := strings.TrimSpace(value)
	switch n := utf8.RuneCountInString(value); {
	case n < 1 || n > maxNameLen:
		errs.Add(field, label+" must be between 1 and 100 characters")
	case trimmed == "":
		errs.Add(field, label+" cannot be empty or whitespace")
	}
	return trimmed
}

// email validates an address and returns it trimmed and lower-cased.
func email(errs tenantry.FieldErrors, value string) string {
	e := strings.ToLower(strings.TrimSpace(value))
	switch {
	case e == "":
		errs.Add("email", "Email is required")
	case utf8.RuneCountInString(e) > maxEmailLen:
		errs.Add("email", "Email must not exceed 255 characters")
	case !validEmail(e):
		errs.Add("email", "Not a valid email address.")
	}
	return e
}

func validEmail(e string) bool {
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return false
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || strings.ContainsAny(e, " \t\r\n") {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return false
		}
	}
	return true
}

// newPassword checks a password chosen by a user.
func newPassword(errs tenantry.FieldErrors, field, value string) {
	switch n := utf8.RuneCountInString(value); {
	case n < minPasswordLen:
		errs.Add(field, "Password must be at least 8 characters")
		return
	case n > maxPasswordLen:
		errs.Add(field, "Password must be at most 128 characters")
		return
	}
	if !strings.ContainsFunc(value, unicode.IsLetter) {
		errs.Add(field, "Password must contain at least one letter")
	}
	if !strings.ContainsFunc(value, unicode.IsDigit) {
		errs.Add(field, "Password must contain at least one number")
	}
}

// loginPassword checks a password presented to log in: no strength rule
// (accounts imported from the original may predate it), only bounds.
func loginPassword(errs tenantry.FieldErrors, field, value string) {
	switch {
	case value == "":
		errs.Add(field, "Password is required")
	case len(value) > maxLoginPassLen:
		errs.Add(field, "Password is too long")
	}
}
