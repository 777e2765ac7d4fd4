package password_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tenantry/tenantry/password"
)

var cheap = password.Params{MemoryKiB: 64, Iterations: 1, Threads: 1}

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	h := password.NewHasher(cheap, 2)
	ctx := context.Background()
	encoded, err := h.Hash(ctx, "Secr3t-passw0rd")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash = %q", encoded)
	}
	other, _ := h.Hash(ctx, "Secr3t-passw0rd")
	if other == encoded {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if ok, rehash, err := h.Verify(ctx, "Secr3t-passw0rd", encoded); !ok || rehash || err != nil {
		t.Fatalf("Verify(right) = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, "secr3t-passw0rd", encoded); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	// Different parameters still verify, and ask for a rehash.
	stronger := password.NewHasher(password.Params{MemoryKiB: 128, Iterations: 1, Threads: 1}, 1)
	if ok, rehash, _ := stronger.Verify(ctx, "Secr3t-passw0rd", encoded); !ok || !rehash {
		t.Fatalf("Verify with new params = %v, rehash %v", ok, rehash)
	}
}

func TestLegacyBcryptHashes(t *testing.T) {
	t.Parallel()
	h := password.NewHasher(cheap, 2)
	legacy, err := bcrypt.GenerateFromPassword([]byte("TestPass123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// The original stored "$2b$" hashes.
	encoded := "$2b$" + string(legacy)[4:]
	if ok, rehash, err := h.Verify(context.Background(), "TestPass123", encoded); !ok || !rehash || err != nil {
		t.Fatalf("Verify(bcrypt) = %v, %v, %v; want a match that asks for a rehash", ok, rehash, err)
	}
	if ok, _, err := h.Verify(context.Background(), "TestPass124", encoded); ok || err != nil {
		t.Fatalf("Verify(wrong bcrypt) = %v, %v", ok, err)
	}
	long := strings.Repeat("a1", 50)
	if ok, _, err := h.Verify(context.Background(), long, encoded); ok || err != nil {
		t.Fatalf("a password over bcrypt's 72 bytes: %v, %v", ok, err)
	}
}

func TestMissingOrCorruptHashesNeverMatch(t *testing.T) {
	t.Parallel()
	h := password.NewHasher(cheap, 2)
	for _, encoded := range []string{"", "plaintext", "$argon2id$v=19$m=64,t=1,p=1$!!$!!", "$argon2id$v=18$m=64,t=1,p=1$AAAA$AAAA"} {
		ok, _, _ := h.Verify(context.Background(), "x", encoded)
		if ok {
			t.Errorf("%q matched", encoded)
		}
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	t.Parallel()
	h := password.NewHasher(password.Params{MemoryKiB: 4 * 1024, Iterations: 1, Threads: 1}, 2)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := h.Hash(context.Background(), "x"); err != nil {
				t.Error(err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	peak := 0
	for {
		peak = max(peak, h.InUse())
		select {
		case <-done:
			if peak > 2 {
				t.Fatalf("%d hashes ran at once, the bound is 2", peak)
			}
			if peak == 0 {
				t.Fatal("no hash was ever seen running")
			}
			return
		default:
		}
	}
}

func TestWaitingForASlotRespectsTheContext(t *testing.T) {
	t.Parallel()
	h := password.NewHasher(password.Params{MemoryKiB: 64 * 1024, Iterations: 3, Threads: 1}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = h.Hash(context.Background(), "slow")
	}()
	for h.InUse() == 0 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash with the only slot taken and a cancelled context = %v, want context.Canceled", err)
	}
	<-done
}
