package tsatest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// OpenSSL is OpenSSL's time-stamping authority (openssl ts -reply) behind
// an HTTP wrapper: each request runs the command once.
type OpenSSL struct {
	*httptest.Server
	CA     *CA
	Signer *Signer
	// RootFile is the CA's root certificate, for openssl ts -verify.
	RootFile string

	dir      string
	mu       sync.Mutex // openssl keeps its serial number in a file
	requests atomic.Int64
}

// OpenSSLPath returns the openssl binary, skipping the test when there is
// none.
func OpenSSLPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed; CI needs it for the time-stamping tests")
		}
		t.Skip("openssl is not installed: the time-stamping tests against OpenSSL's authority are skipped (apt-get install openssl)")
	}
	return p
}

// NewOpenSSL starts OpenSSL's authority under a new CA.
func NewOpenSSL(t testing.TB, name string) *OpenSSL {
	t.Helper()
	OpenSSLPath(t)
	ca := NewCA(t, name)
	o := &OpenSSL{CA: ca, Signer: ca.NewSigner(t, name+" TSA", SignerOptions{}), dir: t.TempDir()}
	o.RootFile = ca.WriteRoot(t, o.dir)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(o.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tsa.pem", CertPEM(o.Signer.Cert))
	write("tsa.key", KeyPEM(t, o.Signer.Key))
	write("chain.pem", CertPEM(ca.Intermediate))
	write("serial", []byte("01\n"))
	write("openssl.cnf", fmt.Appendf(nil, `[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = %s
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/chain.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = %s
other_policies = 1.3.6.1.4.1.99999.1.2
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500
clock_precision_digits = 3
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`, o.dir, DefaultPolicy))
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.Close)
	return o
}

// Requests is how many requests reached the authority.
func (o *OpenSSL) Requests() int64 { return o.requests.Load() }

func (o *OpenSSL) serve(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/timestamp-query" {
		http.Error(w, "want a POST of application/timestamp-query", http.StatusBadRequest)
		return
	}
	query, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	qf := filepath.Join(o.dir, "query.tsq")
	rf := filepath.Join(o.dir, "reply.tsr")
	if err := os.WriteFile(qf, query, 0o600); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	cmd := exec.CommandContext(r.Context(), "openssl", "ts", "-reply", "-config", filepath.Join(o.dir, "openssl.cnf"),
		"-queryfile", qf, "-out", rf)
	if out, err := cmd.CombinedOutput(); err != nil {
		http.Error(w, "openssl ts -reply: "+err.Error()+": "+string(out), http.StatusInternalServerError)
		return
	}
	resp, err := os.ReadFile(rf)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Write(resp)
}

// VerifyWithOpenSSL checks a DER TimeStampResp with openssl ts -verify
// against data (or, when data is nil, against digest in hex), trusting the
// root certificate in caFile, and fails the test if OpenSSL does not
// accept it.
func VerifyWithOpenSSL(t testing.TB, tsr, data []byte, digestHex, caFile string) {
	t.Helper()
	if err := OpenSSLVerify(tsr, data, digestHex, caFile); err != nil {
		t.Fatal(err)
	}
}

// OpenSSLVerify is VerifyWithOpenSSL's check, returning OpenSSL's refusal.
func OpenSSLVerify(tsr, data []byte, digestHex, caFile string) error {
	dir, err := os.MkdirTemp("", "tsaverify")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "token.tsr")
	if err := os.WriteFile(in, tsr, 0o600); err != nil {
		return err
	}
	args := []string{"ts", "-verify", "-in", in, "-CAfile", caFile}
	if data != nil {
		df := filepath.Join(dir, "data")
		if err := os.WriteFile(df, data, 0o600); err != nil {
			return err
		}
		args = append(args, "-data", df)
	} else {
		args = append(args, "-digest", digestHex)
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Verification: OK")) {
		return fmt.Errorf("openssl ts -verify refused the token: %v: %s", err, out)
	}
	return nil
}
