// Package blobtest is the conformance suite for blob.Store. Every store's
// tests run Exercise, so that a behaviour the documents feature relies on is
// specified once and holds on local disk and on S3 alike; a change of
// behaviour starts here.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/blob"
)

// largeSize is the size of the body the suite streams through PutTemp: more
// than two 8 MiB multipart parts, and never held in memory by the test.
const largeSize = 20 << 20

// Exercise runs the conformance suite, in parallel subtests, against stores
// made by newStore. newStore is called once per subtest; stores it returns may
// share storage, since every subtest works under a random prefix of its own.
//
// One subtest checks that Promote renews modification times, which needs the
// store's clock to agree with this machine's to within a second.
func Exercise(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store, prefix string)
	}{
		{"PutPromoteOpen", testPutPromoteOpen},
		{"EmptyBody", testEmptyBody},
		{"Ranges", testRanges},
		{"NotFound", testNotFound},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"List", testList},
		{"ListStops", testListStops},
		{"PromoteReplaces", testPromoteReplaces},
		{"PromoteRenewsModTime", testPromoteRenewsModTime},
		{"LargeBody", testLargeBody},
		{"CancelledPutTemp", testCancelledPutTemp},
		{"FailingReader", testFailingReader},
		{"InvalidKeys", testInvalidKeys},
		{"ConcurrentPromote", testConcurrentPromote},
		{"PresignGet", testPresignGet},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t), newPrefix())
		})
	}
}

// newPrefix returns a tenant prefix shaped like the ones tenantry uses.
func newPrefix() string {
	return "tenants/tenant_acme_" + randomHex(4) + "/"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ContentKey returns the content-addressed key of data under prefix, in the
// layout tenantry uses: files/<2 hex>/<2 hex>/<sha256 hex>.
func ContentKey(prefix string, data []byte) string {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	return prefix + "files/" + h[:2] + "/" + h[2:4] + "/" + h
}

// Store writes data at key through PutTemp and Promote.
func Store(t *testing.T, s blob.Store, prefix, key string, data []byte) {
	t.Helper()
	tmp, size, err := s.PutTemp(t.Context(), prefix, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("PutTemp: %v", err)
	}
	if size != int64(len(data)) {
		t.Fatalf("PutTemp size = %d, want %d", size, len(data))
	}
	if err := s.Promote(t.Context(), tmp, key); err != nil {
		t.Fatalf("Promote(%s, %s): %v", tmp, key, err)
	}
}

// Read returns the bytes Open(key, offset, length) streams.
func Read(t *testing.T, s blob.Store, key string, offset, length int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("Open(%s, %d, %d): %v", key, offset, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s [%d, +%d): %v", key, offset, length, err)
	}
	return b
}

// Keys lists prefix and returns what it found by key.
func Keys(t *testing.T, s blob.Store, prefix string) map[string]blob.Info {
	t.Helper()
	found := map[string]blob.Info{}
	err := s.List(t.Context(), prefix, func(info blob.Info) error {
		if _, dup := found[info.Key]; dup {
			t.Errorf("List(%q) reported %s twice", prefix, info.Key)
		}
		found[info.Key] = info
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return found
}

func sortedKeys(m map[string]blob.Info) []string {
	return slices.Sorted(maps.Keys(m))
}

// checkModTime fails unless mt is within a minute of now: stores report
// second-precision times in the server's clock.
func checkModTime(t *testing.T, what string, mt time.Time) {
	t.Helper()
	if d := time.Since(mt); d < -time.Minute || d > time.Minute {
		t.Errorf("%s ModTime = %v, not within a minute of now", what, mt)
	}
}

func testPutPromoteOpen(t *testing.T, s blob.Store, prefix string) {
	ctx := t.Context()
	data := []byte("The quick brown fox jumps over the lazy dog.\n")
	tmp, size, err := s.PutTemp(ctx, prefix, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("PutTemp: %v", err)
	}
	if size != int64(len(data)) {
		t.Errorf("PutTemp size = %d, want %d", size, len(data))
	}
	if !strings.HasPrefix(tmp, prefix+blob.TempDir) || !blob.ValidKey(tmp) {
		t.Errorf("PutTemp key = %q, want a valid key under %q", tmp, prefix+blob.TempDir)
	}
	info, err := s.Stat(ctx, tmp)
	if err != nil {
		t.Fatalf("Stat(temp): %v", err)
	}
	if info.Key != tmp || info.Size != int64(len(data)) {
		t.Errorf("Stat(temp) = %+v, want key %s size %d", info, tmp, len(data))
	}

	key := ContentKey(prefix, data)
	if err := s.Promote(ctx, tmp, key); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if _, err := s.Stat(ctx, tmp); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(temp) after Promote: error = %v, want ErrNotFound", err)
	}
	info, err = s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != key || info.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, want key %s size %d", info, key, len(data))
	}
	checkModTime(t, "Stat", info.ModTime)
	if got := Read(t, s, key, 0, -1); !bytes.Equal(got, data) {
		t.Errorf("Open read %q, want %q", got, data)
	}
	if got := Keys(t, s, prefix); len(got) != 1 || got[key].Size != int64(len(data)) {
		t.Errorf("List(prefix) = %v, want only %s", got, key)
	}
}

func testEmptyBody(t *testing.T, s blob.Store, prefix string) {
	key := ContentKey(prefix, nil)
	Store(t, s, prefix, key, nil)
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Size != 0 {
		t.Errorf("Stat size = %d, want 0", info.Size)
	}
	if got := Read(t, s, key, 0, -1); len(got) != 0 {
		t.Errorf("Open read %d bytes, want 0", len(got))
	}
	if got := Read(t, s, key, 0, 10); len(got) != 0 {
		t.Errorf("Open(0, 10) read %d bytes, want 0", len(got))
	}
}

func testRanges(t *testing.T, s blob.Store, prefix string) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	key := ContentKey(prefix, data)
	Store(t, s, prefix, key, data)
	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"whole", 0, -1, data},
		{"first byte", 0, 1, data[:1]},
		{"middle slice", 400, 123, data[400:523]},
		{"last byte", 999, 1, data[999:]},
		{"to end", 600, -1, data[600:]},
		{"exact length", 0, 1000, data},
		{"empty", 10, 0, nil},
		{"past the end", 990, 100, data[990:]},
		{"at the end", 1000, -1, nil},
		{"beyond the end", 5000, 10, nil},
	}
	for _, tt := range tests {
		got := Read(t, s, key, tt.offset, tt.length)
		if !bytes.Equal(got, tt.want) {
			t.Errorf("%s: Open(%d, %d) read %d bytes %x..., want %d bytes", tt.name, tt.offset, tt.length, len(got), got[:min(len(got), 8)], len(tt.want))
		}
	}
	for _, r := range [][2]int64{{-1, -1}, {0, -2}} {
		rc, err := s.Open(t.Context(), key, r[0], r[1])
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, blob.ErrInvalidRange) {
			t.Errorf("Open(%d, %d) error = %v, want ErrInvalidRange", r[0], r[1], err)
		}
	}
}

func testNotFound(t *testing.T, s blob.Store, prefix string) {
	ctx := t.Context()
	missing := prefix + "files/00/00/missing"
	if _, err := s.Stat(ctx, missing); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(missing) error = %v, want ErrNotFound", err)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {5, -1}} {
		rc, err := s.Open(ctx, missing, r[0], r[1])
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Open(missing, %d, %d) error = %v, want ErrNotFound", r[0], r[1], err)
		}
	}
	if err := s.Promote(ctx, prefix+blob.TempDir+"missing", missing); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Promote(missing temp) error = %v, want ErrNotFound", err)
	}
	// A "directory" on disk is not an object.
	Store(t, s, prefix, prefix+"files/ab/cd/x", []byte("x"))
	if _, err := s.Stat(ctx, prefix+"files/ab"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat(a key's parent) error = %v, want ErrNotFound", err)
	}
	if rc, err := s.Open(ctx, prefix+"files/ab", 0, -1); !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Errorf("Open(a key's parent) error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, prefix+"files/ab"); err != nil {
		t.Errorf("Delete(a key's parent) = %v, want nil", err)
	}
	if got := Read(t, s, prefix+"files/ab/cd/x", 0, -1); string(got) != "x" {
		t.Errorf("after deleting its parent, object reads %q, want %q", got, "x")
	}
}

func testDeleteIdempotent(t *testing.T, s blob.Store, prefix string) {
	ctx := t.Context()
	data := []byte("to be deleted")
	key := ContentKey(prefix, data)
	Store(t, s, prefix, key, data)
	for i := range 2 {
		if err := s.Delete(ctx, key); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat after Delete #%d: error = %v, want ErrNotFound", i+1, err)
		}
	}
	rc, err := s.Open(ctx, key, 0, -1)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open after Delete: error = %v, want ErrNotFound", err)
	}
	if got := Keys(t, s, prefix); len(got) != 0 {
		t.Errorf("List after Delete = %v, want nothing", sortedKeys(got))
	}
}

func testList(t *testing.T, s blob.Store, prefix string) {
	// sibling's name extends prefix's last segment: a prefix with its
	// trailing slash must not reach into it.
	sibling := strings.TrimSuffix(prefix, "/") + "b/"
	objects := map[string]string{
		prefix + "files/3a/c5/one":   "1",
		prefix + "files/3a/d0/two":   "22",
		prefix + "files/3ab":         "333",
		prefix + "files/3b/00/three": "4444",
		sibling + "files/3a/c5/four": "55555",
	}
	for k, v := range objects {
		Store(t, s, prefix, k, []byte(v))
	}
	tmp, _, err := s.PutTemp(t.Context(), prefix, strings.NewReader("temporary"))
	if err != nil {
		t.Fatalf("PutTemp: %v", err)
	}
	objects[tmp] = "temporary"

	tests := []struct {
		prefix string
		want   []string
	}{
		{prefix, []string{prefix + "files/3a/c5/one", prefix + "files/3a/d0/two", prefix + "files/3ab", prefix + "files/3b/00/three", tmp}},
		{prefix + "files/3a/", []string{prefix + "files/3a/c5/one", prefix + "files/3a/d0/two"}},
		{prefix + "files/3a", []string{prefix + "files/3a/c5/one", prefix + "files/3a/d0/two", prefix + "files/3ab"}},
		{prefix + blob.TempDir, []string{tmp}},
		{prefix + "files/3a/c5/one", []string{prefix + "files/3a/c5/one"}},
		{prefix + "files/ff/", nil},
		{prefix + "nothing/here/", nil},
		{sibling, []string{sibling + "files/3a/c5/four"}},
		{strings.TrimSuffix(prefix, "/"), []string{prefix + "files/3a/c5/one", prefix + "files/3a/d0/two", prefix + "files/3ab", prefix + "files/3b/00/three", tmp, sibling + "files/3a/c5/four"}},
	}
	for _, tt := range tests {
		got := Keys(t, s, tt.prefix)
		if len(got) != len(tt.want) {
			t.Errorf("List(%q) = %v, want %v", tt.prefix, sortedKeys(got), tt.want)
			continue
		}
		for _, k := range tt.want {
			info, ok := got[k]
			if !ok {
				t.Errorf("List(%q) = %v, want %v", tt.prefix, sortedKeys(got), tt.want)
				break
			}
			if info.Size != int64(len(objects[k])) {
				t.Errorf("List(%q): %s has size %d, want %d", tt.prefix, k, info.Size, len(objects[k]))
			}
			checkModTime(t, "List "+k, info.ModTime)
		}
	}
}

func testListStops(t *testing.T, s blob.Store, prefix string) {
	for i := range 3 {
		Store(t, s, prefix, fmt.Sprintf("%sfiles/%02d", prefix, i), []byte{byte(i)})
	}
	errStop := errors.New("stop here")
	calls := 0
	err := s.List(t.Context(), prefix, func(blob.Info) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Errorf("List error = %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("callback ran %d times after returning an error, want 1", calls)
	}
}

func testPromoteReplaces(t *testing.T, s blob.Store, prefix string) {
	key := prefix + "files/replaced"
	Store(t, s, prefix, key, []byte("old content, longer"))
	Store(t, s, prefix, key, []byte("new"))
	if got := Read(t, s, key, 0, -1); string(got) != "new" {
		t.Errorf("after replacing Promote, read %q, want %q", got, "new")
	}
	if got := Keys(t, s, prefix); len(got) != 1 {
		t.Errorf("List = %v, want only %s", sortedKeys(got), key)
	}
}

func testPromoteRenewsModTime(t *testing.T, s blob.Store, prefix string) {
	data := []byte("identical content uploaded twice")
	key := ContentKey(prefix, data)
	Store(t, s, prefix, key, data)
	first, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	// S3 keeps modification times to the second: wait past one so that a
	// renewed time is distinguishable from the old one.
	time.Sleep(1100 * time.Millisecond)
	before := time.Now().Truncate(time.Second)
	Store(t, s, prefix, key, data)
	second, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if second.ModTime.Before(before) || !second.ModTime.After(first.ModTime) {
		t.Errorf("ModTime after re-Promote = %v, want after the first (%v) and not before %v", second.ModTime, first.ModTime, before)
	}
}

// generator returns a deterministic pseudo-random stream of n bytes, so that
// large bodies are produced and checked without being held in memory.
func generator(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return io.LimitReader(mathrand.NewChaCha8(s), n)
}

func testLargeBody(t *testing.T, s blob.Store, prefix string) {
	ctx := t.Context()
	want := sha256.New()
	tmp, size, err := s.PutTemp(ctx, prefix, io.TeeReader(generator(1, largeSize), want))
	if err != nil {
		t.Fatalf("PutTemp: %v", err)
	}
	if size != largeSize {
		t.Fatalf("PutTemp size = %d, want %d", size, largeSize)
	}
	key := prefix + "files/large/" + hex.EncodeToString(want.Sum(nil))
	if err := s.Promote(ctx, tmp, key); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	info, err := s.Stat(ctx, key)
	if err != nil || info.Size != largeSize {
		t.Fatalf("Stat = %+v, %v; want size %d", info, err, largeSize)
	}

	rc, err := s.Open(ctx, key, 0, -1)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != largeSize {
		t.Fatalf("reading back: %d bytes, %v; want %d", n, err, largeSize)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("read back SHA-256 %x, want %x", got.Sum(nil), want.Sum(nil))
	}

	// A range straddling the 8 MiB boundary between multipart parts.
	const off, length = 8<<20 - 100, 300
	expect := make([]byte, length)
	g := generator(1, largeSize)
	if _, err := io.CopyN(io.Discard, g, off); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(g, expect); err != nil {
		t.Fatal(err)
	}
	if got := Read(t, s, key, off, length); !bytes.Equal(got, expect) {
		t.Errorf("Open(%d, %d) read different bytes", off, length)
	}
}

// interruptingReader streams pseudo-random bytes and calls interrupt once
// after the first `after` bytes, to make a write fail midway.
type interruptingReader struct {
	r         io.Reader
	after     int64
	read      int64
	interrupt func() error
}

func (r *interruptingReader) Read(p []byte) (int, error) {
	if r.read >= r.after && r.interrupt != nil {
		if err := r.interrupt(); err != nil {
			return 0, err
		}
		r.interrupt = nil
	}
	n, err := r.r.Read(p[:min(int64(len(p)), max(r.after-r.read, 1<<16))])
	r.read += int64(n)
	return n, err
}

// Writes are interrupted at these offsets: within the first 8 MiB part, and
// after a multipart upload has started.
const (
	cutInFirstPart  = 1 << 20
	cutAfterOnePart = 12 << 20
)

func testCancelledPutTemp(t *testing.T, s blob.Store, prefix string) {
	for _, after := range []int64{cutInFirstPart, cutAfterOnePart} {
		ctx, cancel := context.WithCancel(t.Context())
		r := &interruptingReader{r: generator(2, 4*largeSize), after: after, interrupt: func() error { cancel(); return nil }}
		key, _, err := s.PutTemp(ctx, prefix, r)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("PutTemp cancelled after %d bytes: key %q, error = %v, want context.Canceled", after, key, err)
		}
		if r.read > after+16<<20 {
			t.Errorf("PutTemp read %d bytes after being cancelled at %d", r.read-after, after)
		}
		if got := Keys(t, s, prefix); len(got) != 0 {
			t.Errorf("cancelled PutTemp after %d bytes left %v", after, sortedKeys(got))
		}
	}
}

func testFailingReader(t *testing.T, s blob.Store, prefix string) {
	errBroken := errors.New("client went away")
	for _, after := range []int64{cutInFirstPart, cutAfterOnePart} {
		r := &interruptingReader{r: generator(3, 4*largeSize), after: after, interrupt: func() error { return errBroken }}
		key, _, err := s.PutTemp(t.Context(), prefix, r)
		if !errors.Is(err, errBroken) {
			t.Errorf("PutTemp from a reader failing after %d bytes: key %q, error = %v, want the reader's error", after, key, err)
		}
		if got := Keys(t, s, prefix); len(got) != 0 {
			t.Errorf("failed PutTemp after %d bytes left %v", after, sortedKeys(got))
		}
	}
}

// BadKeys are keys every store must refuse.
func badKeys() []string {
	return []string{
		"", "/", "/etc/passwd", "a/", "a//b", ".", "..", "../outside", "tenants/../../outside",
		"a/./b", `a\b`, `..\outside`, "a\x00b", "a\nb", "\xff", strings.Repeat("k", blob.MaxKeyLength+1),
	}
}

func testInvalidKeys(t *testing.T, s blob.Store, prefix string) {
	ctx := t.Context()
	good := prefix + "files/good"
	Store(t, s, prefix, good, []byte("good"))
	tmp, _, err := s.PutTemp(ctx, prefix, strings.NewReader("temp"))
	if err != nil {
		t.Fatalf("PutTemp: %v", err)
	}
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("%s error = %v, want ErrInvalidKey", op, err)
		}
	}
	for _, bad := range badKeys() {
		rc, err := s.Open(ctx, bad, 0, -1)
		if err == nil {
			rc.Close()
		}
		check(fmt.Sprintf("Open(%q)", bad), err)
		_, err = s.Stat(ctx, bad)
		check(fmt.Sprintf("Stat(%q)", bad), err)
		check(fmt.Sprintf("Delete(%q)", bad), s.Delete(ctx, bad))
		check(fmt.Sprintf("Promote(temp, %q)", bad), s.Promote(ctx, tmp, bad))
		check(fmt.Sprintf("Promote(%q, key)", bad), s.Promote(ctx, bad, good))
		_, err = s.PresignGet(ctx, bad, time.Minute, "", "")
		check(fmt.Sprintf("PresignGet(%q)", bad), err)
	}
	for _, bad := range []string{"/", "/abs/", "a//", "../", "tenants/../", `a\b/`, "a\x00/"} {
		_, _, err := s.PutTemp(ctx, bad, strings.NewReader("x"))
		check(fmt.Sprintf("PutTemp(%q)", bad), err)
		check(fmt.Sprintf("List(%q)", bad), s.List(ctx, bad, func(blob.Info) error { return nil }))
	}
	// Refused calls touched nothing.
	if got := Read(t, s, good, 0, -1); string(got) != "good" {
		t.Errorf("good object reads %q after refused calls", got)
	}
	if _, err := s.Stat(ctx, tmp); err != nil {
		t.Errorf("temp object gone after refused Promote: %v", err)
	}
}

func testConcurrentPromote(t *testing.T, s blob.Store, prefix string) {
	data := make([]byte, 1<<20)
	if _, err := io.ReadFull(generator(4, int64(len(data))), data); err != nil {
		t.Fatal(err)
	}
	key := ContentKey(prefix, data)
	const uploads = 10
	var wg sync.WaitGroup
	for range uploads {
		wg.Go(func() {
			tmp, _, err := s.PutTemp(t.Context(), prefix, bytes.NewReader(data))
			if err != nil {
				t.Errorf("PutTemp: %v", err)
				return
			}
			if err := s.Promote(t.Context(), tmp, key); err != nil {
				t.Errorf("Promote: %v", err)
			}
		})
	}
	wg.Wait()
	if got := Read(t, s, key, 0, -1); !bytes.Equal(got, data) {
		t.Errorf("after %d concurrent uploads, read %d bytes differing from the %d uploaded", uploads, len(got), len(data))
	}
	if got := Keys(t, s, prefix); len(got) != 1 {
		t.Errorf("after %d concurrent uploads, List = %v, want only %s", uploads, sortedKeys(got), key)
	}
}

func testPresignGet(t *testing.T, s blob.Store, prefix string) {
	data := []byte("%PDF-1.7 not really a PDF")
	key := ContentKey(prefix, data)
	Store(t, s, prefix, key, data)
	const disposition = `attachment; filename="rapport.pdf"; filename*=UTF-8''rapport%20d%C3%A9cembre.pdf`
	const contentType = "application/pdf"
	u, err := s.PresignGet(t.Context(), key, time.Minute, disposition, contentType)
	if errors.Is(err, blob.ErrPresignUnsupported) {
		return
	}
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	body, resp := Fetch(t, u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET presigned URL: status %d, body %q", resp.StatusCode, body)
	}
	if !bytes.Equal(body, data) {
		t.Errorf("GET presigned URL: body %q, want %q", body, data)
	}
	if got := resp.Header.Get("Content-Disposition"); got != disposition {
		t.Errorf("Content-Disposition = %q, want %q", got, disposition)
	}
	if got := resp.Header.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type = %q, want %q", got, contentType)
	}
}

// Fetch GETs u without credentials and returns the body and response.
func Fetch(t *testing.T, u string) ([]byte, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return body, resp
}

func testPing(t *testing.T, s blob.Store, _ string) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
