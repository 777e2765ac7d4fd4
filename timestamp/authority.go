// Package timestamp obtains and verifies trusted time-stamps (RFC 3161)
// from the time-stamping authorities an operator configures. A response is
// kept as proof only once Verify has checked everything it claims: status
// granted, the message imprint, the nonce, the CMS signature, the signer's
// timeStamping key usage and its chain to the authority's roots at the
// token's time, the ESSCertID naming the signer, and the policy.
package timestamp

import (
	"bytes"
	"crypto"
	_ "crypto/sha256" // the hashes tokens may use
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Algorithm names the hash a file is stamped with.
type Algorithm string

// The algorithms a tenant may choose.
const (
	SHA256 Algorithm = "sha256"
	SHA384 Algorithm = "sha384"
	SHA512 Algorithm = "sha512"
)

// DefaultAlgorithm is the algorithm of a tenant that chose none.
const DefaultAlgorithm = SHA256

// ParseAlgorithm reads an algorithm's name.
func ParseAlgorithm(s string) (Algorithm, bool) {
	switch a := Algorithm(strings.ToLower(strings.TrimSpace(s))); a {
	case SHA256, SHA384, SHA512:
		return a, true
	}
	return "", false
}

// Hash is the algorithm's crypto.Hash.
func (a Algorithm) Hash() crypto.Hash {
	switch a {
	case SHA384:
		return crypto.SHA384
	case SHA512:
		return crypto.SHA512
	}
	return crypto.SHA256
}

// AuthorityConfig is one authority as an operator writes it in
// TENANTRY_TSA_AUTHORITIES.
type AuthorityConfig struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// RootsFile or RootsPEM hold the trusted root and intermediate
	// certificates, PEM; with neither, the system's trusted roots.
	RootsFile string `json:"roots_file,omitempty"`
	RootsPEM  string `json:"roots_pem,omitempty"`
	// PolicyOID, when set, is requested and required of every token.
	PolicyOID string `json:"policy_oid,omitempty"`
	Username  string `json:"username,omitempty"`
	Password  string `json:"password,omitempty"`
}

// Authority is a configured authority, ready to be asked.
type Authority struct {
	Name   string
	URL    string
	Policy string
	// Roots are the trust anchors; Intermediates the other configured
	// certificates, which help build a path.
	Roots         *x509.CertPool
	Intermediates []*x509.Certificate
	// Certificates are all the configured certificates, handed out with
	// the evidence.
	Certificates []*x509.Certificate
	username     string
	password     string
}

// DigiCertName is the name of the authority DIGICERT_TSA_URL configures.
const DigiCertName = "digicert"

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ParseAuthorities reads TENANTRY_TSA_AUTHORITIES, a JSON array of
// AuthorityConfig, and DIGICERT_TSA_URL, the original's variable, which
// adds an authority named digicert trusting the system's roots (unless
// the array names one digicert itself). Either may be empty.
func ParseAuthorities(jsonArray, digicertURL string) ([]*Authority, error) {
	var cfgs []AuthorityConfig
	if strings.TrimSpace(jsonArray) != "" {
		dec := json.NewDecoder(strings.NewReader(jsonArray))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfgs); err != nil {
			return nil, fmt.Errorf("TENANTRY_TSA_AUTHORITIES: not a JSON array of authorities: %v", err)
		}
	}
	if u := strings.TrimSpace(digicertURL); u != "" {
		named := false
		for _, c := range cfgs {
			named = named || c.Name == DigiCertName
		}
		if !named {
			cfgs = append(cfgs, AuthorityConfig{Name: DigiCertName, URL: u})
		}
	}
	seen := map[string]bool{}
	out := make([]*Authority, 0, len(cfgs))
	var errs []error
	for i, c := range cfgs {
		a, err := NewAuthority(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("TENANTRY_TSA_AUTHORITIES[%d]: %w", i, err))
			continue
		}
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("TENANTRY_TSA_AUTHORITIES[%d]: the name %q is used twice", i, a.Name))
			continue
		}
		seen[a.Name] = true
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// NewAuthority checks one authority's configuration and loads its roots.
func NewAuthority(c AuthorityConfig) (*Authority, error) {
	if !namePattern.MatchString(c.Name) {
		return nil, fmt.Errorf("name %q: use lower-case letters, digits, '.', '_' or '-'", c.Name)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: url %q is not an http(s) URL", c.Name, c.URL)
	}
	if c.PolicyOID != "" {
		if _, err := ParseOID(c.PolicyOID); err != nil {
			return nil, fmt.Errorf("%s: policy_oid: %w", c.Name, err)
		}
	}
	if (c.Username == "") != (c.Password == "") {
		return nil, fmt.Errorf("%s: username and password go together", c.Name)
	}
	a := &Authority{Name: c.Name, URL: c.URL, Policy: c.PolicyOID, username: c.Username, password: c.Password}
	pemText := []byte(c.RootsPEM)
	switch {
	case c.RootsFile != "" && c.RootsPEM != "":
		return nil, fmt.Errorf("%s: give roots_file or roots_pem, not both", c.Name)
	case c.RootsFile != "":
		if pemText, err = os.ReadFile(c.RootsFile); err != nil {
			return nil, fmt.Errorf("%s: roots_file: %w", c.Name, err)
		}
	case c.RootsPEM == "":
		if a.Roots, err = x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("%s: no roots configured and the system's cannot be read: %w", c.Name, err)
		}
		return a, nil
	}
	if err := a.addCertificates(pemText); err != nil {
		return nil, fmt.Errorf("%s: roots: %w", c.Name, err)
	}
	return a, nil
}

// addCertificates reads PEM certificates: self-signed ones become roots,
// the others intermediates, unless none is self-signed, in which case the
// configured ones are the anchors themselves.
func (a *Authority) addCertificates(text []byte) error {
	for len(text) > 0 {
		var b *pem.Block
		b, text = pem.Decode(text)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return err
		}
		a.Certificates = append(a.Certificates, c)
	}
	if len(a.Certificates) == 0 {
		return errors.New("no PEM certificate found")
	}
	a.Roots = x509.NewCertPool()
	anchors := 0
	for _, c := range a.Certificates {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			a.Roots.AddCert(c)
			anchors++
		} else {
			a.Intermediates = append(a.Intermediates, c)
		}
	}
	if anchors == 0 {
		for _, c := range a.Intermediates {
			a.Roots.AddCert(c)
		}
		a.Intermediates = nil
	}
	return nil
}

// ParseOID reads a dotted object identifier such as 2.16.840.1.
func ParseOID(s string) (asn1.ObjectIdentifier, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%q is not a dotted object identifier", s)
	}
	oid := make(asn1.ObjectIdentifier, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a dotted object identifier", s)
		}
		oid[i] = n
	}
	return oid, nil
}

// Expect returns what a token from this authority must prove for digest.
func (a *Authority) Expect(alg Algorithm, digest []byte) Expect {
	return Expect{Algorithm: alg, Digest: digest, Roots: a.Roots, Intermediates: a.Intermediates, Policy: a.Policy}
}
