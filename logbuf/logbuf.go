// Package logbuf batches a server's log lines into fewer writes. Written
// straight to stderr, every access-log line costs a system call, which on a
// busy server is a sizeable share of a cheap request's CPU. A Writer
// collects lines and writes them out when its buffer fills, at a fixed
// interval, and when it is closed; Handler also writes out at once any
// record at or above a level, so warnings and errors are never held back.
// On a hard kill the lines of the last interval can be lost, the price of
// not paying a system call per line.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Writer buffers what is written to it before passing it on to its
// destination. It is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	out  io.Writer
	buf  []byte
	stop chan struct{}
	done chan struct{}
}

// NewWriter returns a Writer holding up to size bytes for out and writing
// them out at least every interval. Close it to write out the rest.
func NewWriter(out io.Writer, size int, interval time.Duration) *Writer {
	w := &Writer{out: out, buf: make([]byte, 0, size), stop: make(chan struct{}), done: make(chan struct{})}
	go w.flushEvery(interval)
	return w
}

func (w *Writer) flushEvery(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write buffers p, writing out what is buffered first if p does not fit,
// and p itself at once if it is larger than the buffer. Lines are never
// split between two writes.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf)+len(p) > cap(w.buf) {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(w.buf) {
			return w.out.Write(p)
		}
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *Writer) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	// What could not be written is dropped rather than retried: a
	// destination that fails once, a closed pipe say, would otherwise grow
	// every later write.
	w.buf = w.buf[:0]
	return err
}

// Close stops the periodic writes and writes out what is buffered. Writes
// after Close are still buffered, and written out only by a Flush.
func (w *Writer) Close() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.Flush()
}

// Handler returns h, writing to w, made to write out w's buffer after each
// record at or above level.
func Handler(h slog.Handler, w *Writer, level slog.Level) slog.Handler {
	return &flushing{Handler: h, w: w, level: level}
}

type flushing struct {
	slog.Handler
	w     *Writer
	level slog.Level
}

func (f *flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= f.level {
		if ferr := f.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (f *flushing) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &flushing{Handler: f.Handler.WithAttrs(attrs), w: f.w, level: f.level}
}

func (f *flushing) WithGroup(name string) slog.Handler {
	return &flushing{Handler: f.Handler.WithGroup(name), w: f.w, level: f.level}
}
