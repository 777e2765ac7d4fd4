package timestamp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/timestamp"
	"github.com/tenantry/tenantry/timestamp/tsatest"
)

func digestOf(alg timestamp.Algorithm, data []byte) []byte {
	h := alg.Hash().New()
	h.Write(data)
	return h.Sum(nil)
}

func randomData(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 4096)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func authority(t *testing.T, name, url, roots, policy string) *timestamp.Authority {
	t.Helper()
	a, err := timestamp.NewAuthority(timestamp.AuthorityConfig{Name: name, URL: url, RootsPEM: roots, PolicyOID: policy})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Ensure tokens from OpenSSL's authority verify, for each algorithm, and
// that OpenSSL agrees.
func TestStampOpenSSL(t *testing.T) {
	t.Parallel()
	tsa := tsatest.NewOpenSSL(t, "OpenSSL")
	a := authority(t, "openssl", tsa.URL, tsa.CA.ChainPEM(), tsatest.DefaultPolicy)
	c := timestamp.NewClient(timestamp.ClientConfig{})
	for _, alg := range []timestamp.Algorithm{timestamp.SHA256, timestamp.SHA384, timestamp.SHA512} {
		data := randomData(t)
		before := time.Now().Add(-2 * time.Second)
		tok, err := c.Stamp(context.Background(), a, alg, digestOf(alg, data))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if tok.Algorithm != alg || tok.Policy != tsatest.DefaultPolicy || tok.Serial == nil || tok.GenTime.Before(before) {
			t.Fatalf("%s: token %+v", alg, tok)
		}
		if tok.Accuracy != 1500*time.Millisecond {
			t.Fatalf("%s: accuracy %s", alg, tok.Accuracy)
		}
		if tok.Signer.Subject.CommonName != "OpenSSL TSA" || len(tok.Chain) != 3 {
			t.Fatalf("%s: signer %s, chain of %d", alg, tok.Signer.Subject, len(tok.Chain))
		}
		tsatest.VerifyWithOpenSSL(t, tok.Response, data, "", tsa.RootFile)
		// The stored response verifies again, later, without the nonce.
		if _, err := timestamp.Verify(tok.Response, a.Expect(alg, digestOf(alg, data))); err != nil {
			t.Fatalf("%s: re-verify: %v", alg, err)
		}
	}
}

// Ensure tokens from the digitorus-built authority verify, and that
// OpenSSL agrees.
func TestStampGoAuthority(t *testing.T) {
	t.Parallel()
	tsatest.OpenSSLPath(t)
	tsa := tsatest.NewAuthority(t, "Go", tsatest.SignerOptions{})
	a := authority(t, "go", tsa.URL, tsa.CA.RootPEM(), "")
	c := timestamp.NewClient(timestamp.ClientConfig{})
	for _, alg := range []timestamp.Algorithm{timestamp.SHA256, timestamp.SHA512} {
		data := randomData(t)
		tok, err := c.Stamp(context.Background(), a, alg, digestOf(alg, data))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		tsatest.VerifyWithOpenSSL(t, tok.Response, nil, hex.EncodeToString(digestOf(alg, data)), tsa.CA.WriteRoot(t, t.TempDir()))
	}
}

// Ensure each way a response can fail to prove what it claims is caught,
// with its reason.
func TestStampRefusesInvalidResponses(t *testing.T) {
	t.Parallel()
	good := tsatest.NewAuthority(t, "Good", tsatest.SignerOptions{})
	noEKU := tsatest.NewAuthorityUnder(t, good.CA, good.CA.NewSigner(t, "No EKU", tsatest.SignerOptions{NoEKU: true}))
	softEKU := tsatest.NewAuthorityUnder(t, good.CA, good.CA.NewSigner(t, "Soft EKU", tsatest.SignerOptions{NonCriticalEKU: true}))
	stranger := tsatest.NewAuthority(t, "Stranger", tsatest.SignerOptions{})
	c := timestamp.NewClient(timestamp.ClientConfig{Timeout: 5 * time.Second})
	cases := []struct {
		name      string
		tsa       *tsatest.Authority
		fault     tsatest.Fault
		policy    string
		transient bool
		reason    string
	}{
		{name: "WrongImprint", tsa: good, fault: tsatest.WrongImprint, reason: "message imprint does not match"},
		{name: "NoNonce", tsa: good, fault: tsatest.NoNonce, reason: "nonce not echoed"},
		{name: "BrokenSignature", tsa: good, fault: tsatest.BrokenSignature, reason: "signature does not verify"},
		{name: "WrongPolicy", tsa: good, fault: tsatest.WrongPolicy, policy: tsatest.DefaultPolicy, reason: "policy 1.2.3.4 is not the configured"},
		{name: "NotGranted", tsa: good, fault: tsatest.Rejection, reason: "status rejection"},
		{name: "NoEKU", tsa: noEKU, reason: "lacks the id-kp-timeStamping extended key usage"},
		{name: "NonCriticalEKU", tsa: softEKU, reason: "extended key usage is not critical"},
		{name: "UnknownRoot", tsa: stranger, reason: "does not chain to the authority's roots"},
		{name: "TooManyRequests", tsa: good, fault: tsatest.TooManyRequests, transient: true, reason: "HTTP 429"},
		{name: "ServerError", tsa: good, fault: tsatest.ServerError, transient: true, reason: "HTTP 503"},
		{name: "Down", tsa: good, fault: tsatest.Down, transient: true, reason: "authority unreachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case has its own authority state; they run one by one.
			tc.tsa.SetFault(tc.fault)
			defer tc.tsa.SetFault(tsatest.OK)
			a := authority(t, "a", tc.tsa.URL, good.CA.RootPEM(), tc.policy)
			data := randomData(t)
			_, err := c.Stamp(context.Background(), a, timestamp.SHA256, digestOf(timestamp.SHA256, data))
			if err == nil {
				t.Fatal("accepted")
			}
			if timestamp.Transient(err) != tc.transient {
				t.Fatalf("transient = %v for %v", !tc.transient, err)
			}
			if r := timestamp.Reason(err); !strings.Contains(r, tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", r, tc.reason)
			}
		})
	}
	var te *timestamp.TransientError
	good.SetFault(tsatest.TooManyRequests)
	_, err := c.Stamp(context.Background(), authority(t, "a", good.URL, good.CA.RootPEM(), ""), timestamp.SHA256, make([]byte, 32))
	good.SetFault(tsatest.OK)
	if !errors.As(err, &te) || te.RetryAfter != time.Second {
		t.Fatalf("429: %v", err)
	}
}

// Ensure an authority that is not listening is a transient failure.
func TestStampClosedAuthority(t *testing.T) {
	t.Parallel()
	tsa := tsatest.NewAuthority(t, "Closed", tsatest.SignerOptions{})
	tsa.Close()
	a := authority(t, "closed", tsa.URL, tsa.CA.RootPEM(), "")
	_, err := timestamp.NewClient(timestamp.ClientConfig{}).Stamp(context.Background(), a, timestamp.SHA256, make([]byte, 32))
	if !timestamp.Transient(err) {
		t.Fatalf("got %v", err)
	}
}

// Ensure a client sends no more than its rate to one authority.
func TestStampRateLimit(t *testing.T) {
	t.Parallel()
	tsa := tsatest.NewAuthority(t, "Rate", tsatest.SignerOptions{})
	a := authority(t, "rate", tsa.URL, tsa.CA.RootPEM(), "")
	c := timestamp.NewClient(timestamp.ClientConfig{RatePerSecond: 20})
	done := make(chan error)
	for range 10 {
		go func() {
			_, err := c.Stamp(context.Background(), a, timestamp.SHA256, make([]byte, 32))
			done <- err
		}()
	}
	for range 10 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	times := tsa.Times()
	// Ten requests at 20 per second span at least nine intervals of 50ms,
	// less the scheduling slack of each.
	if span := times[len(times)-1].Sub(times[0]); span < 400*time.Millisecond {
		t.Fatalf("10 requests within %s at 20/s", span)
	}
}

// Ensure operators' authority lists are read, and mistakes reported.
func TestParseAuthorities(t *testing.T) {
	t.Parallel()
	ca := tsatest.NewCA(t, "Conf")
	roots := strings.ReplaceAll(ca.ChainPEM(), "\n", `\n`)
	list, err := timestamp.ParseAuthorities(`[{"name":"local","url":"http://127.0.0.1:1/tsa","roots_pem":"`+roots+`","policy_oid":"1.2.3"}]`, "https://timestamp.digicert.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "local" || list[1].Name != timestamp.DigiCertName || list[0].Policy != "1.2.3" {
		t.Fatalf("got %+v", list)
	}
	if len(list[0].Certificates) != 2 || len(list[0].Intermediates) != 1 {
		t.Fatalf("roots: %d certificates, %d intermediates", len(list[0].Certificates), len(list[0].Intermediates))
	}
	for _, bad := range []string{
		`{}`,
		`[{"name":"x","url":"ftp://h/"}]`,
		`[{"name":"Bad Name","url":"http://h/"}]`,
		`[{"name":"x","url":"http://h/","policy_oid":"abc"}]`,
		`[{"name":"x","url":"http://h/","roots_pem":"nothing"}]`,
		`[{"name":"x","url":"http://h/","roots_file":"/nonexistent"}]`,
		`[{"name":"x","url":"http://h/","username":"u"}]`,
		`[{"name":"x","url":"http://h/"},{"name":"x","url":"http://h/"}]`,
		`[{"name":"x","url":"http://h/","extra":1}]`,
	} {
		if _, err := timestamp.ParseAuthorities(bad, ""); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
