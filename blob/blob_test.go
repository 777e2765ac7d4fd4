package blob_test

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/blob"
)

const contentKey = "tenants/tenant_acme_1a2b3c4d/files/3a/c5/3ac5a9f1c1b0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4"

func TestValidKey(t *testing.T) {
	t.Parallel()
	good := []string{
		contentKey,
		"tenants/tenant_acme_1a2b3c4d/tmp/0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11",
		"a",
		".hidden",
		"a/..b/c..",
		"dir/with space/é",
		strings.Repeat("a/", 511) + "bc",
	}
	for _, k := range good {
		if !blob.ValidKey(k) {
			t.Errorf("ValidKey(%q) = false, want true", k)
		}
	}
	bad := []string{
		"", "/", "/abs", "a/", "a//b", ".", "..", "../x", "a/../b", "a/./b", "a/..",
		`a\b`, "a\x00b", "a\nb", "a\tb", "a\x7fb", "a\u0085b", "\xff\xfe",
		strings.Repeat("a", blob.MaxKeyLength+1),
	}
	for _, k := range bad {
		if blob.ValidKey(k) {
			t.Errorf("ValidKey(%q) = true, want false", k)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "tenants/", "tenants/tenant_acme_1a2b3c4d/", "tenants/tenant_acme_1a2b3c4d/files/3a"} {
		if !blob.ValidPrefix(p) {
			t.Errorf("ValidPrefix(%q) = false, want true", p)
		}
	}
	for _, p := range []string{"/", "//", "a//", "/tenants/", "../", "a/../", "a\x00/"} {
		if blob.ValidPrefix(p) {
			t.Errorf("ValidPrefix(%q) = true, want false", p)
		}
	}
}

func TestNewTempKey(t *testing.T) {
	t.Parallel()
	const prefix = "tenants/tenant_acme_1a2b3c4d/"
	k1, err := blob.NewTempKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := blob.NewTempKey(prefix)
	if !strings.HasPrefix(k1, prefix+blob.TempDir) || !blob.ValidKey(k1) || k1 == k2 {
		t.Errorf("NewTempKey(%q) = %q then %q, want distinct valid keys under %q", prefix, k1, k2, prefix+blob.TempDir)
	}
	if _, err := blob.NewTempKey("../"); !errors.Is(err, blob.ErrInvalidKey) {
		t.Errorf("NewTempKey(../) error = %v, want ErrInvalidKey", err)
	}
}

func TestCheckRange(t *testing.T) {
	t.Parallel()
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {5, 10}, {1 << 40, -1}} {
		if err := blob.CheckRange(r[0], r[1]); err != nil {
			t.Errorf("CheckRange(%d, %d) = %v", r[0], r[1], err)
		}
	}
	for _, r := range [][2]int64{{-1, -1}, {0, -2}, {-5, 3}} {
		if err := blob.CheckRange(r[0], r[1]); !errors.Is(err, blob.ErrInvalidRange) {
			t.Errorf("CheckRange(%d, %d) = %v, want ErrInvalidRange", r[0], r[1], err)
		}
	}
}

// FuzzValidKey checks that an accepted key is already clean and local, the
// property the local disk store depends on to stay inside its root.
func FuzzValidKey(f *testing.F) {
	for _, s := range []string{contentKey, "../a", "a/./b", "a//b", `a\b`, "\x00", "é/è"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if !blob.ValidKey(key) {
			if err := blob.CheckKeys(key); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("CheckKeys(%q) = %v, want ErrInvalidKey", key, err)
			}
			return
		}
		if path.Clean(key) != key || path.IsAbs(key) || !filepath.IsLocal(filepath.FromSlash(key)) {
			t.Fatalf("ValidKey accepted %q, which is not a clean local path", key)
		}
		if !blob.ValidPrefix(key) || !blob.ValidPrefix(key+"/") {
			t.Fatalf("ValidPrefix refuses valid key %q", key)
		}
	})
}
