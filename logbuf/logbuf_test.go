package logbuf_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/logbuf"
)

// recorder keeps each write it receives apart.
type recorder struct {
	mu     sync.Mutex
	writes []string
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

// Ensure lines are held until the buffer fills, a flush or the close, come
// out in order and whole, and that a line larger than the buffer passes
// straight through after what was buffered before it.
func TestWriterBatches(t *testing.T) {
	t.Parallel()
	var out recorder
	w := logbuf.NewWriter(&out, 16, time.Hour)
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if got := out.all(); len(got) != 0 {
		t.Fatalf("lines written before the buffer filled: %q", got)
	}
	// 14 bytes are buffered; this one does not fit, so they go first.
	if _, err := w.Write([]byte("four\n")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 20) + "\n"
	if _, err := w.Write([]byte(long)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("five\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"one\ntwo\nthree\n", "four\n", long, "five\n"}
	if got := out.all(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("writes = %q, want %q", got, want)
	}
}

// Ensure what is buffered is written out within the interval without
// anyone flushing.
func TestWriterFlushesPeriodically(t *testing.T) {
	t.Parallel()
	var out recorder
	w := logbuf.NewWriter(&out, 1<<10, 10*time.Millisecond)
	defer w.Close()
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(out.all()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was never written out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Ensure the handler writes out at once from its level up, and leaves
// quieter records buffered, through derived loggers too.
func TestHandlerFlushesFromLevel(t *testing.T) {
	t.Parallel()
	var out recorder
	w := logbuf.NewWriter(&out, 1<<10, time.Hour)
	defer w.Close()
	logger := slog.New(logbuf.Handler(slog.NewJSONHandler(w, nil), w, slog.LevelWarn)).With("component", "test")
	logger.Info("routine")
	if got := out.all(); len(got) != 0 {
		t.Fatalf("an info record was written at once: %q", got)
	}
	logger.WithGroup("g").Warn("attention")
	got := out.all()
	if len(got) != 1 || !strings.Contains(got[0], `"msg":"routine"`) || !strings.Contains(got[0], `"msg":"attention"`) {
		t.Fatalf("after a warning: %q, want both records in one write", got)
	}
}

// Ensure concurrent writers lose no line and split none.
func TestWriterConcurrent(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var mu sync.Mutex
	w := logbuf.NewWriter(lockedWriter{&mu, &out}, 256, time.Millisecond)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "writer %d line %d\n", g, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSuffix(out.String(), "\n"), "\n") {
		seen[line] = true
	}
	for g := range writers {
		for i := range lines {
			if line := fmt.Sprintf("writer %d line %d", g, i); !seen[line] {
				t.Fatalf("line %q is missing or split", line)
			}
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
