package tsatest

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rfc3161 "github.com/digitorus/timestamp"
)

// Fault is a way an authority misbehaves.
type Fault int

// The faults a verifier and a stamping job must survive.
const (
	// OK answers correctly.
	OK Fault = iota
	// WrongImprint stamps another digest than the one asked for.
	WrongImprint
	// NoNonce leaves the request's nonce out.
	NoNonce
	// BrokenSignature corrupts the signature.
	BrokenSignature
	// WrongPolicy stamps under another policy than the configured one.
	WrongPolicy
	// Rejection answers with status rejection instead of granted.
	Rejection
	// TooManyRequests answers HTTP 429.
	TooManyRequests
	// ServerError answers HTTP 503.
	ServerError
	// Down drops the connection without answering.
	Down
)

// Authority is a time-stamping authority built with
// github.com/digitorus/timestamp, whose behaviour a test sets.
type Authority struct {
	*httptest.Server
	CA     *CA
	Signer *Signer
	// Policy is the policy of its tokens.
	Policy asn1.ObjectIdentifier

	fault    atomic.Int64
	requests atomic.Int64
	granted  atomic.Int64

	mu     sync.Mutex
	times  []time.Time
	gate   chan struct{}
	gateIn chan struct{}
}

// DefaultPolicy is the policy of the test authorities' tokens.
const DefaultPolicy = "1.3.6.1.4.1.99999.1.1"

// NewAuthority starts an authority under a new CA; signer options choose
// its certificate (a valid one by default).
func NewAuthority(t testing.TB, name string, opts SignerOptions) *Authority {
	t.Helper()
	ca := NewCA(t, name)
	return NewAuthorityUnder(t, ca, ca.NewSigner(t, name+" TSA", opts))
}

// NewAuthorityUnder starts an authority signing with signer, from ca.
func NewAuthorityUnder(t testing.TB, ca *CA, signer *Signer) *Authority {
	t.Helper()
	a := &Authority{CA: ca, Signer: signer, Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

// SetFault changes how the authority answers from now on.
func (a *Authority) SetFault(f Fault) { a.fault.Store(int64(f)) }

// Requests is how many requests reached the authority.
func (a *Authority) Requests() int64 { return a.requests.Load() }

// Granted is how many tokens it issued.
func (a *Authority) Granted() int64 { return a.granted.Load() }

// Times are when each request arrived.
func (a *Authority) Times() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.times...)
}

// Hold makes requests wait until Release; entered receives a value as each
// request starts waiting.
func (a *Authority) Hold() (entered <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gate, a.gateIn = make(chan struct{}), make(chan struct{}, 1024)
	return a.gateIn
}

// Release lets held requests and those to come go on.
func (a *Authority) Release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gate != nil {
		close(a.gate)
		a.gate = nil
	}
}

func (a *Authority) serve(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	a.mu.Lock()
	a.times = append(a.times, time.Now())
	gate, in := a.gate, a.gateIn
	a.mu.Unlock()
	if gate != nil {
		in <- struct{}{}
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	fault := Fault(a.fault.Load())
	switch fault {
	case TooManyRequests:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	case ServerError:
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	case Down:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	req, err := rfc3161.ParseRequest(body)
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var resp []byte
	if fault == Rejection {
		resp, err = rfc3161.CreateErrorResponse(rfc3161.Rejection, rfc3161.BadRequest)
	} else {
		ts := rfc3161.Timestamp{
			HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage,
			Time: time.Now().UTC().Truncate(time.Second), Accuracy: time.Second,
			Nonce: req.Nonce, Policy: a.Policy, AddTSACertificate: req.Certificates,
			Certificates: []*x509.Certificate{a.CA.Intermediate},
		}
		switch fault {
		case WrongImprint:
			sum := sha256.Sum256([]byte("something else"))
			ts.HashAlgorithm, ts.HashedMessage = crypto.SHA256, sum[:]
			if req.HashAlgorithm != crypto.SHA256 {
				h := req.HashAlgorithm.New()
				h.Write([]byte("something else"))
				ts.HashAlgorithm, ts.HashedMessage = req.HashAlgorithm, h.Sum(nil)
			}
		case NoNonce:
			ts.Nonce = nil
		case WrongPolicy:
			ts.Policy = asn1.ObjectIdentifier{1, 2, 3, 4}
		}
		resp, err = ts.CreateResponseWithOpts(a.Signer.Cert, a.Signer.Key, crypto.SHA256)
		if err == nil && fault == BrokenSignature {
			resp = breakSignature(resp)
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if fault == OK {
		a.granted.Add(1)
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(resp)
}

// breakSignature flips a bit in the last bytes of a response, which belong
// to the signer's signature: the response still parses but no longer
// verifies.
func breakSignature(resp []byte) []byte {
	out := append([]byte(nil), resp...)
	out[len(out)-5] ^= 0x01
	return out
}

// Respond returns a granted response over digest (SHA-256), signed by
// signer under ca, without any HTTP: a token for tests that need one.
func Respond(t testing.TB, ca *CA, signer *Signer, digest []byte) []byte {
	t.Helper()
	ts := rfc3161.Timestamp{
		HashAlgorithm: crypto.SHA256, HashedMessage: digest, Time: time.Now().UTC().Truncate(time.Second),
		Nonce: big.NewInt(42), Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}, AddTSACertificate: true,
		Certificates: []*x509.Certificate{ca.Intermediate},
	}
	resp, err := ts.CreateResponseWithOpts(signer.Cert, signer.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
