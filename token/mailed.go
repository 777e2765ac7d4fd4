package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Mailed tokens are the random ones links in mails carry (verification,
// password reset, invitation): 256 bits, written in 43 base64url
// characters, and stored only as their SHA-256, so that the mail holds the
// one usable copy.

// NewMailed returns a new mailed token and the hash it is stored as.
func NewMailed() (raw, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	raw = base64.RawURLEncoding.EncodeToString(b)
	return raw, HashMailed(raw)
}

// HashMailed is how a mailed token is stored and looked up.
func HashMailed(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// ValidMailed reports whether raw is written as a mailed token is, so that
// what cannot be one is refused before any lookup.
func ValidMailed(raw string) bool {
	if len(raw) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(raw)
	return err == nil
}
