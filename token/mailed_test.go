package token_test

import (
	"testing"

	"github.com/tenantry/tenantry/token"
)

func TestMailedTokens(t *testing.T) {
	raw, hash := token.NewMailed()
	other, _ := token.NewMailed()
	if !token.ValidMailed(raw) || raw == other || token.HashMailed(raw) != hash || len(hash) != 64 || hash == raw {
		t.Fatalf("raw %q, hash %q", raw, hash)
	}
	for _, bad := range []string{"", "short", raw + "x", raw[:42] + "!"} {
		if token.ValidMailed(bad) {
			t.Errorf("%q passed for a mailed token", bad)
		}
	}
}
