package token

import (
	"strconv"
	"testing"
)

// Ensure the cache never holds more than its two generations, and that an
// entry used since the last turn survives the next one.
func TestVerifiedBounded(t *testing.T) {
	t.Parallel()
	var v verified
	v.put("kept", Claims{UserID: "kept"})
	for i := range 5 * verifiedCacheSize {
		v.put(strconv.Itoa(i), Claims{})
		if n := len(v.cur) + len(v.old); n > 2*verifiedCacheSize {
			t.Fatalf("%d entries after %d puts", n, i+1)
		}
		if i%(verifiedCacheSize/2) == 0 {
			if c, ok := v.get("kept"); !ok || c.UserID != "kept" {
				t.Fatalf("an entry in use was dropped after %d puts", i+1)
			}
		}
	}
	if _, ok := v.get("0"); ok {
		t.Fatal("an entry unused for generations is still there")
	}
}
