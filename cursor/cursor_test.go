package cursor_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/tenantry/tenantry/cursor"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := cursor.NewCodec([]byte("secret"))
	scope := cursor.Scope{"documents", "tenant-a", "-created_at", ""}
	want := cursor.Position{Key: "2026-12-02T00:00:00.000000Z", ID: "0b7e5b8e-6b0a-4c1e-9d3a-2f1c2e3d4f5a", Page: 7, Total: 123}
	got, err := c.Decode(scope, c.Encode(scope, want))
	if err != nil || got != want {
		t.Fatalf("Decode(Encode(%+v)) = %+v, %v", want, got, err)
	}
	// Another process with the same secret reads it too.
	if _, err := cursor.NewCodec([]byte("secret")).Decode(scope, c.Encode(scope, want)); err != nil {
		t.Fatalf("another codec with the same secret: %v", err)
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	c := cursor.NewCodec([]byte("secret"))
	scope := cursor.Scope{"documents", "tenant-a", "-created_at", ""}
	good := c.Encode(scope, cursor.Position{Key: "k", ID: "id", Page: 2, Total: 40})
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flipped := append([]byte(nil), raw...)
	flipped[3] ^= 1
	for name, in := range map[string]struct {
		scope  cursor.Scope
		cursor string
	}{
		"other tenant":  {cursor.Scope{"documents", "tenant-b", "-created_at", ""}, good},
		"other sort":    {cursor.Scope{"documents", "tenant-a", "created_at", ""}, good},
		"other filter":  {cursor.Scope{"documents", "tenant-a", "-created_at", "x"}, good},
		"other listing": {cursor.Scope{"files", "tenant-a", "-created_at", ""}, good},
		"joined parts":  {cursor.Scope{"documents", "tenant-a", "-created_at\x00"}, good},
		"other secret":  {scope, cursor.NewCodec([]byte("other")).Encode(scope, cursor.Position{Key: "k", Page: 2})},
		"truncated":     {scope, good[:len(good)-2]},
		"edited":        {scope, base64.RawURLEncoding.EncodeToString(flipped)},
		"not base64":    {scope, "!!!"},
		"empty":         {scope, ""},
		"first page":    {scope, c.Encode(scope, cursor.Position{Key: "k", Page: 1})},
		"no key":        {scope, c.Encode(scope, cursor.Position{Page: 3})},
	} {
		if _, err := c.Decode(in.scope, in.cursor); !errors.Is(err, cursor.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	c := cursor.NewCodec([]byte("secret"))
	scope := cursor.Scope{"documents", "t"}
	f.Add(c.Encode(scope, cursor.Position{Key: "k", ID: "i", Page: 2, Total: 3}))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := c.Decode(scope, s)
		if err == nil && (p.Key == "" || p.Page < 2) {
			t.Fatalf("accepted %q as %+v", s, p)
		}
	})
}
