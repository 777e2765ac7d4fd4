package digest_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/tenantry/tenantry/digest"
)

func expected(data []byte) digest.Sums {
	s := sha256.Sum256(data)
	m := md5.Sum(data)
	return digest.Sums{SHA256: hex.EncodeToString(s[:]), MD5: hex.EncodeToString(m[:]), Size: int64(len(data))}
}

func TestSums(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 4095, 256 << 10, 256<<10 + 1, 3 << 20, 5<<20 + 17} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		for name, src := range map[string]io.Reader{
			"whole":     bytes.NewReader(data),
			"one byte":  iotest.OneByteReader(bytes.NewReader(data)),
			"half":      iotest.HalfReader(bytes.NewReader(data)),
			"data+EOF":  iotest.DataErrReader(bytes.NewReader(data)),
			"small buf": io.LimitReader(bytes.NewReader(data), int64(size)),
		} {
			if size > 1<<20 && name == "one byte" {
				continue
			}
			r := digest.NewReader(src)
			var out bytes.Buffer
			if _, err := io.Copy(&out, r); err != nil {
				t.Fatal(err)
			}
			got, err := r.Sums()
			if err != nil {
				t.Fatal(err)
			}
			if got != expected(data) || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("size %d, %s: sums %+v, want %+v (bytes equal: %v)", size, name, got, expected(data), bytes.Equal(out.Bytes(), data))
			}
		}
	}
}

func TestSumsBeforeTheEndAreRefused(t *testing.T) {
	t.Parallel()
	r := digest.NewReader(bytes.NewReader(make([]byte, 1<<20)))
	buf := make([]byte, 1000)
	if _, err := r.Read(buf); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sums(); err == nil {
		t.Fatal("Sums of a half-read stream succeeded")
	}
	if _, err := r.Read(buf); err == nil {
		t.Fatal("Read after the Reader stopped succeeded")
	}
}

func TestSourceErrorsPassThrough(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r := digest.NewReader(io.MultiReader(bytes.NewReader(make([]byte, 300<<10)), iotest.ErrReader(boom)))
	_, err := io.Copy(io.Discard, r)
	if !errors.Is(err, boom) {
		t.Fatalf("copy error = %v", err)
	}
	r.Close()
}

func BenchmarkReader(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 32<<10)
	for b.Loop() {
		r := digest.NewReader(bytes.NewReader(data))
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Sums(); err != nil {
			b.Fatal(err)
		}
	}
}
