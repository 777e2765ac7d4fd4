package timestamp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"time"

	rfc3161 "github.com/digitorus/timestamp"
	"golang.org/x/time/rate"
)

// maxResponseBytes bounds what is read of an authority's answer; a
// TimeStampResp with a full chain is a few kilobytes.
const maxResponseBytes = 1 << 20

// TransientError is a failure that may pass: the authority could not be
// reached, failed (5xx), or asked to slow down (429). Retrying later may
// succeed.
type TransientError struct {
	Reason string
	// RetryAfter is the wait the authority asked for, if any.
	RetryAfter time.Duration
}

func (e *TransientError) Error() string { return "timestamp: " + e.Reason }

// HTTPError is an authority's HTTP refusal (4xx other than 429): the
// request will not be accepted by asking again.
type HTTPError struct {
	Status int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("timestamp: authority answered HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// Transient reports whether err is worth retrying.
func Transient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// Reason is err in words fit for a file's failure reason.
func Reason(err error) string {
	var (
		v *VerifyError
		r *RefusedError
		t *TransientError
		h *HTTPError
	)
	switch {
	case errors.As(err, &v):
		return "verification failed: " + v.Reason
	case errors.As(err, &r):
		return r.Error()[len("timestamp: "):]
	case errors.As(err, &t):
		return t.Reason
	case errors.As(err, &h):
		return h.Error()[len("timestamp: "):]
	case err == nil:
		return ""
	}
	return err.Error()
}

// Observer records each request to an authority: its outcome (stamped,
// refused, invalid, unavailable) and how long it took.
type Observer interface {
	ObserveTimestampRequest(authority, outcome string, d time.Duration)
}

// ClientConfig tunes a Client.
type ClientConfig struct {
	// Timeout bounds one request. Defaults to 30 seconds.
	Timeout time.Duration
	// RatePerSecond is how many requests per second this process sends
	// to each authority at most; zero is unlimited.
	RatePerSecond float64
	// HTTPClient sends the requests; nil uses one of its own.
	HTTPClient *http.Client
	Observer   Observer
}

// Client asks authorities for time-stamps and verifies what they answer.
type Client struct {
	cfg  ClientConfig
	http *http.Client

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, http: hc, limiters: map[string]*rate.Limiter{}}
}

func (c *Client) limiter(name string) *rate.Limiter {
	if c.cfg.RatePerSecond <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.limiters[name]
	if l == nil {
		// A burst of one: requests leave evenly spaced, never several at
		// once after a quiet spell.
		l = rate.NewLimiter(rate.Limit(c.cfg.RatePerSecond), 1)
		c.limiters[name] = l
	}
	return l
}

// newNonce returns a random positive 64-bit nonce.
func newNonce() (*big.Int, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] &= 0x7f
	n := new(big.Int).SetBytes(b)
	if n.Sign() == 0 {
		n.SetInt64(1)
	}
	return n, nil
}

// Stamp asks a for a time-stamp over digest, computed with alg, and
// returns it verified. The error is a *TransientError, *HTTPError,
// *RefusedError or *VerifyError.
func (c *Client) Stamp(ctx context.Context, a *Authority, alg Algorithm, digest []byte) (*Token, error) {
	if l := c.limiter(a.Name); l != nil {
		if err := l.Wait(ctx); err != nil {
			return nil, &TransientError{Reason: "waiting for the authority's rate limit: " + err.Error()}
		}
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	req := &rfc3161.Request{HashAlgorithm: alg.Hash(), HashedMessage: digest, Certificates: true, Nonce: nonce}
	if a.Policy != "" {
		req.TSAPolicyOID, _ = ParseOID(a.Policy)
	}
	body, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("timestamp: build request: %w", err)
	}
	start := time.Now()
	tok, err := c.send(ctx, a, body, alg, digest, nonce)
	if c.cfg.Observer != nil {
		c.cfg.Observer.ObserveTimestampRequest(a.Name, outcome(err), time.Since(start))
	}
	return tok, err
}

func outcome(err error) string {
	var (
		v *VerifyError
		r *RefusedError
		h *HTTPError
	)
	switch {
	case err == nil:
		return "stamped"
	case errors.As(err, &v):
		return "invalid"
	case errors.As(err, &r), errors.As(err, &h):
		return "refused"
	}
	return "unavailable"
}

func (c *Client) send(ctx context.Context, a *Authority, body []byte, alg Algorithm, digest []byte, nonce *big.Int) (*Token, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/timestamp-query")
	hreq.Header.Set("Accept", "application/timestamp-reply")
	hreq.Header.Set("User-Agent", "tenantry-tsa-client/1")
	if a.username != "" {
		hreq.SetBasicAuth(a.username, a.password)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, &TransientError{Reason: "authority unreachable: " + unwrapURLError(err).Error()}
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, &TransientError{Reason: "authority answered HTTP 429 Too Many Requests", RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case resp.StatusCode >= 500:
		return nil, &TransientError{Reason: fmt.Sprintf("authority answered HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	case resp.StatusCode != http.StatusOK:
		return nil, &HTTPError{Status: resp.StatusCode}
	case err != nil:
		return nil, &TransientError{Reason: "reading the authority's answer: " + err.Error()}
	case len(der) > maxResponseBytes:
		return nil, invalid("the answer is larger than %d bytes", maxResponseBytes)
	}
	want := a.Expect(alg, digest)
	want.Nonce = nonce
	return Verify(der, want)
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap()
	}
	return err
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
