package api

import (
	"regexp"
	"strings"
	"testing"
)

// Ensure canonicalID accepts exactly what the documented pattern accepts,
// and lower-cases it.
func FuzzCanonicalID(f *testing.F) {
	for _, s := range []string{
		"0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", "0B7E3B8E-5F7A-4C1E-9A57-3B7C2C0C9A11",
		"urn:uuid:0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", "{0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11}",
		"0b7e3b8e5f7a4c1e9a573b7c2c0c9a11", "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a1g", "0b7e3b8e-5f7a-4c1e-9a57_3b7c2c0c9a11",
		"", "-", "0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11\n",
	} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(idPattern)
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := canonicalID(s)
		if want := pattern.MatchString(s); ok != want {
			t.Fatalf("canonicalID(%q) accepted = %v, pattern says %v", s, ok, want)
		}
		if ok && got != strings.ToLower(s) {
			t.Fatalf("canonicalID(%q) = %q, want it lower-cased", s, got)
		}
	})
}

// Ensure the text pattern refuses exactly the C0 controls and DEL.
func TestTextPattern(t *testing.T) {
	pattern := regexp.MustCompile(textPattern)
	for r := rune(0); r < 0x250; r++ {
		control := r < 0x20 || r == 0x7F
		if got := pattern.MatchString("a" + string(r) + "b"); got == control {
			t.Errorf("U+%04X: accepted = %v", r, got)
		}
	}
}
