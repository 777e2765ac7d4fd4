package smtp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/mail"
	"github.com/tenantry/tenantry/smtp"
	"github.com/tenantry/tenantry/smtp/smtptest"
)

func message(to string) *mail.Message {
	return &mail.Message{ID: "m-" + to, To: to, Subject: "Bonjour", Text: "plain body", HTML: "<p>html body</p>", Kind: "test"}
}

func TestSendToARealServer(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort, From: "Acme <no-reply@acme.example>", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(s.Describe(), "opportunistic") || strings.Contains(s.Describe(), "p)") {
		t.Errorf("describe = %q", s.Describe())
	}
	for i := range 3 {
		if err := s.Send(context.Background(), message("ada@example.com")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := srv.WaitFor(t, "ada@example.com", 3, 10*time.Second)
	m := got[0]
	if m.Subject != "Bonjour" || m.From.Address != "no-reply@acme.example" || strings.TrimSpace(m.Text) != "plain body" || !strings.Contains(m.HTML, "html body") {
		t.Errorf("received %+v", m)
	}
	if m.MessageID != "m-ada@example.com@acme.example" {
		t.Errorf("Message-ID = %q", m.MessageID)
	}
}

func TestPermanentRefusal(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{AllowedRecipients: `@example\.com$`})
	s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), message("someone@refused.example"))
	if !mail.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent refusal", err)
	}
	// The connection is still usable for the next message.
	if err := s.Send(context.Background(), message("ok@example.com")); err != nil {
		t.Fatal(err)
	}
}

func TestServerDownIsTemporary(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), message("a@example.com")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err = s.Send(context.Background(), message("b@example.com"))
	if err == nil || mail.IsPermanent(err) {
		t.Fatalf("err = %v, want a temporary failure", err)
	}
	srv.Restart()
	if err := s.Send(context.Background(), message("c@example.com")); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if n := len(srv.To(t, "b@example.com")); n != 0 {
		t.Errorf("%d messages for b", n)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cert, key, roots := selfSigned(t)
	t.Run("required STARTTLS", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{TLSCert: cert, TLSKey: key, RequireSTARTTLS: true})
		s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort, TLS: smtp.TLSRequired, Username: "u", Password: "p",
			TLSConfig: &tls.Config{RootCAs: roots}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), message("tls@example.com")); err != nil {
			t.Fatal(err)
		}
		srv.WaitFor(t, "tls@example.com", 1, 10*time.Second)
	})
	t.Run("implicit TLS", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{TLSCert: cert, TLSKey: key, RequireTLS: true})
		s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort, TLS: smtp.TLSImplicit, Username: "u", Password: "p",
			TLSConfig: &tls.Config{RootCAs: roots}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), message("implicit@example.com")); err != nil {
			t.Fatal(err)
		}
		srv.WaitFor(t, "implicit@example.com", 1, 10*time.Second)
	})
	t.Run("required but not offered", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{})
		s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort, TLS: smtp.TLSRequired})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), message("clear@example.com"))
		if err == nil || mail.IsPermanent(err) {
			t.Fatalf("err = %v, want a temporary failure: nothing goes in clear", err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		srv := smtptest.Start(t, smtptest.Options{TLSCert: cert, TLSKey: key})
		s, err := smtp.New(smtp.Config{Host: srv.Host, Port: srv.SMTPPort, TLS: smtp.TLSRequired})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), message("mitm@example.com")); err == nil {
			t.Fatal("a certificate no root vouches for was accepted")
		}
	})
}

func TestConfigDefaults(t *testing.T) {
	if smtp.DefaultTLS("smtp.example.com") != smtp.TLSRequired || smtp.DefaultTLS("127.0.0.1") != smtp.TLSOpportunistic ||
		smtp.DefaultTLS("localhost") != smtp.TLSOpportunistic || smtp.DefaultTLS("::1") != smtp.TLSOpportunistic {
		t.Error("TLS must be required off loopback by default")
	}
	if smtp.DefaultPort(smtp.TLSImplicit) != 465 || smtp.DefaultPort(smtp.TLSRequired) != 587 {
		t.Error("default ports")
	}
	if _, err := smtp.New(smtp.Config{Host: "smtp.example.com", TLS: smtp.TLSNone, Username: "u", Password: "p"}); err == nil {
		t.Error("a password in clear off loopback was accepted")
	}
	if _, err := smtp.New(smtp.Config{Host: "smtp.example.com", TLS: "sometimes"}); err == nil {
		t.Error("an unknown TLS mode was accepted")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
