package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// limitBodies cuts request bodies that stop arriving. An upload may be slow
// as long as it moves: each read may wait up to idle for the next bytes. Any
// other body must arrive whole within idle. Without this a client that
// stalls after the first kilobyte holds its connection, and whatever the
// handler holds, forever.
func limitBodies(idle time.Duration, next http.Handler) http.Handler {
	if idle <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			b := &idleBody{body: r.Body, rc: http.NewResponseController(w), idle: idle}
			if !streamed(r.Header.Get("Content-Type")) {
				b.cap = time.Now().Add(idle)
			}
			r.Body = b
		}
		next.ServeHTTP(w, r)
	})
}

// streamed reports whether a body of this type is read as a stream (an
// upload) rather than decoded whole.
func streamed(contentType string) bool {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	return mediaType == "multipart/form-data" || mediaType == "application/octet-stream"
}

// idleBody sets the connection's read deadline before each read: idle from
// now, or the cap if that comes first. Once the body has been read to its end
// it clears the deadline, because the server keeps reading the connection in the
// background while the handler runs, and a deadline passing then would
// cancel the request.
type idleBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	cap   time.Time
	ended bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.ended {
		return b.body.Read(p)
	}
	deadline := time.Now().Add(b.idle)
	if !b.cap.IsZero() && b.cap.Before(deadline) {
		deadline = b.cap
	}
	_ = b.rc.SetReadDeadline(deadline)
	n, err := b.body.Read(p)
	if errors.Is(err, io.EOF) {
		b.end()
	}
	// After any other error the deadline stays: the connection is done
	// for, and whatever reads it next must fail at once, not wait.
	return n, err
}

func (b *idleBody) end() {
	if !b.ended {
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

// Close leaves a deadline in force if the body was not read to its end: the
// server then discards what remains, and that must not wait on a stalled
// client either.
func (b *idleBody) Close() error { return b.body.Close() }
