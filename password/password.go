// Package password hashes and verifies passwords. New hashes are argon2id in
// the PHC string format; bcrypt hashes imported from the original platform
// still verify and are reported as needing a rehash. Hashing is expensive on
// purpose, so it runs under a concurrency bound: a flood of logins queues for
// a slot instead of taking every core.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/tenantry/tenantry"
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB  uint32
	Iterations uint32
	Threads    uint8
}

// DefaultParams follow OWASP's first argon2id recommendation (19 MiB, two
// passes, one lane): about 20 ms per hash on a current core.
var DefaultParams = Params{MemoryKiB: 19 * 1024, Iterations: 2, Threads: 1} //nolint:gochecknoglobals // read-only defaults

const (
	saltLen = 16
	keyLen  = 32
	// slotWait bounds how long a request waits for a hashing slot before it
	// is told to come back later, so that queued requests cannot pile up
	// without limit under a flood.
	slotWait = 10 * time.Second
)

// Hasher hashes and verifies passwords under a concurrency bound. Each
// argon2id hash allocates Params.MemoryKiB afresh, garbage once the hash
// returns; the bound also caps how much of it is live at once, which is
// what a server's memory limit leaves room for (see cmd/tenantry's
// memoryLimitFloor), so that a burst of sign-ins is collected as it goes
// rather than piling up.
type Hasher struct {
	params Params
	slots  chan struct{}

	dummyOnce sync.Once
	dummy     string
}

// NewHasher returns a Hasher with the given parameters, allowing at most
// concurrency hashes at once (GOMAXPROCS when zero).
func NewHasher(params Params, concurrency int) *Hasher {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	if params.Threads == 0 {
		params.Threads = 1
	}
	return &Hasher{params: params, slots: make(chan struct{}, concurrency)}
}

func (h *Hasher) acquire(ctx context.Context) error {
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return &tenantry.Error{Code: tenantry.EUnavailable, Message: "Too many concurrent sign-ins; try again shortly", RetryAfter: 1}
	}
}

func (h *Hasher) release() { <-h.slots }

// InUse reports how many hashing slots are taken now.
func (h *Hasher) InUse() int { return len(h.slots) }

// Hash returns the argon2id hash of password in PHC format.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(password)
}

func (h *Hasher) hash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	p := h.params
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, and whether encoded
// should be replaced by a fresh hash (legacy bcrypt, or argon2id with other
// parameters). An empty encoded hash (an account without a password)
// never matches, but costs a full hash like any other attempt.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (match, rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		p, salt, key, err := decode(encoded)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Threads, uint32(len(key)))
		return subtle.ConstantTimeCompare(got, key) == 1, p != h.params, nil
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		switch {
		case err == nil:
			return true, true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword), errors.Is(err, bcrypt.ErrPasswordTooLong):
			return false, false, nil
		}
		return false, false, fmt.Errorf("verify bcrypt hash: %w", err)
	default:
		// No usable hash: burn the same work as a real verification so
		// that the answer's timing says nothing about the account.
		_ = h.burn(password)
		return false, false, nil
	}
}

// VerifyNone costs what a failed verification costs, for an email no account
// has: a login for an unknown address must take as long as a wrong password.
func (h *Hasher) VerifyNone(ctx context.Context, password string) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer h.release()
	return h.burn(password)
}

func (h *Hasher) burn(password string) error {
	h.dummyOnce.Do(func() { h.dummy, _ = h.hash("tenantry timing equaliser") })
	p, salt, key, err := decode(h.dummy)
	if err != nil {
		return err
	}
	_ = argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Threads, uint32(len(key)))
	return nil
}

func decode(encoded string) (Params, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return Params{}, nil, nil, errors.New("malformed argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, errors.New("unsupported argon2id version")
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Threads); err != nil {
		return Params{}, nil, nil, errors.New("malformed argon2id parameters")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, errors.New("malformed argon2id salt")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return Params{}, nil, nil, errors.New("malformed argon2id key")
	}
	return p, salt, key, nil
}
