package timestamp_test

import (
	"context"
	"testing"

	"github.com/tenantry/tenantry/timestamp"
	"github.com/tenantry/tenantry/timestamp/tsatest"
)

// BenchmarkVerify measures the verification of one kept token: parse, CMS
// signature, ESSCertID, key usage and the chain to the roots at genTime.
func BenchmarkVerify(b *testing.B) {
	for _, name := range []string{"go", "openssl"} {
		b.Run(name, func(b *testing.B) {
			var url, roots string
			if name == "go" {
				tsa := tsatest.NewAuthority(b, "Go", tsatest.SignerOptions{})
				url, roots = tsa.URL, tsa.CA.RootPEM()
			} else {
				tsa := tsatest.NewOpenSSL(b, "OpenSSL")
				url, roots = tsa.URL, tsa.CA.ChainPEM()
			}
			a, err := timestamp.NewAuthority(timestamp.AuthorityConfig{Name: name, URL: url, RootsPEM: roots})
			if err != nil {
				b.Fatal(err)
			}
			digest := make([]byte, 32)
			tok, err := timestamp.NewClient(timestamp.ClientConfig{}).Stamp(context.Background(), a, timestamp.SHA256, digest)
			if err != nil {
				b.Fatal(err)
			}
			want := a.Expect(timestamp.SHA256, digest)
			b.ResetTimer()
			for b.Loop() {
				if _, err := timestamp.Verify(tok.Response, want); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStamp measures one request to a local authority and the
// verification of its answer.
func BenchmarkStamp(b *testing.B) {
	tsa := tsatest.NewAuthority(b, "Go", tsatest.SignerOptions{})
	a, err := timestamp.NewAuthority(timestamp.AuthorityConfig{Name: "go", URL: tsa.URL, RootsPEM: tsa.CA.RootPEM()})
	if err != nil {
		b.Fatal(err)
	}
	c := timestamp.NewClient(timestamp.ClientConfig{})
	digest := make([]byte, 32)
	for b.Loop() {
		if _, err := c.Stamp(context.Background(), a, timestamp.SHA256, digest); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify feeds arbitrary bytes to the verification of responses and
// to the reading of tokens' imprints, which take evidence from users: they
// must refuse, never panic. The seeds are a genuine response and its parts.
func FuzzVerify(f *testing.F) {
	ca := tsatest.NewCA(f, "Fuzz")
	signer := ca.NewSigner(f, "Fuzz TSA", tsatest.SignerOptions{})
	digest := make([]byte, 32)
	resp := tsatest.Respond(f, ca, signer, digest)
	a, err := timestamp.NewAuthority(timestamp.AuthorityConfig{Name: "fuzz", URL: "http://127.0.0.1:1/", RootsPEM: ca.RootPEM()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x02})
	want := a.Expect(timestamp.SHA256, digest)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = timestamp.Verify(b, want)
		if raw, err := timestamp.ParseResponse(b); err == nil {
			_, _, _ = timestamp.Imprint(raw)
		}
	})
}
