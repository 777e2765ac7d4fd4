// Package tsatest runs time-stamping authorities for tests: OpenSSL's own
// (openssl ts -reply) behind a small HTTP wrapper, an independent
// implementation, and one built with github.com/digitorus/timestamp that
// can be told to misbehave in each way a verifier must catch. Each works
// under a throwaway certificate authority the test creates.
package tsatest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority: a root, an intermediate under it,
// and time-stamping signers under the intermediate.
type CA struct {
	Root, Intermediate *x509.Certificate
	rootKey, interKey  crypto.Signer
}

// Signer is a certificate with its key.
type Signer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

var (
	oidEKU          = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
)

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewCA creates a root and an intermediate valid from an hour ago for ten
// years, named after name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca := &CA{rootKey: newKey(t), interKey: newKey(t)}
	now := time.Now()
	root := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name + " Root CA", Organization: []string{"tenantry tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca.Root = create(t, root, root, ca.rootKey.Public(), ca.rootKey)
	inter := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name + " Timestamping CA", Organization: []string{"tenantry tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca.Intermediate = create(t, inter, ca.Root, ca.interKey.Public(), ca.rootKey)
	return ca
}

// SignerOptions shape a time-stamping certificate.
type SignerOptions struct {
	// NoEKU leaves the extended key usage out; NonCriticalEKU marks it
	// non-critical. A valid TSA certificate has it, critical.
	NoEKU, NonCriticalEKU bool
	// NotAfter, when set, ends the certificate's validity.
	NotAfter time.Time
}

// NewSigner issues a time-stamping certificate under the intermediate.
func (ca *CA) NewSigner(t testing.TB, name string, opts SignerOptions) *Signer {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name, Organization: []string{"tenantry tests"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
	}
	if !opts.NotAfter.IsZero() {
		tmpl.NotAfter = opts.NotAfter
	}
	if !opts.NoEKU {
		// Go's own encoding of extended key usage is never critical, and
		// RFC 3161 wants it critical: the extension is written by hand.
		val, err := asn1.Marshal([]asn1.ObjectIdentifier{oidTimeStamping})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidEKU, Critical: !opts.NonCriticalEKU, Value: val}}
	}
	return &Signer{Cert: create(t, tmpl, ca.Intermediate, key.Public(), ca.interKey), Key: key}
}

// RootPEM is the root certificate, PEM.
func (ca *CA) RootPEM() string { return string(CertPEM(ca.Root)) }

// ChainPEM is the root and the intermediate, PEM, as an operator
// configures an authority's roots.
func (ca *CA) ChainPEM() string { return string(CertPEM(ca.Root)) + string(CertPEM(ca.Intermediate)) }

// WriteRoot writes the root certificate to a file in dir, for openssl's
// -CAfile, and returns its path.
func (ca *CA) WriteRoot(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(p, CertPEM(ca.Root), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// CertPEM encodes a certificate as PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes a private key as PKCS #8 PEM.
func KeyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
