package timestamp

import (
	"bytes"
	"crypto"
	"crypto/sha1" //nolint:gosec // ESSCertID (RFC 2634) names its signer by a SHA-1 hash.
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/digitorus/pkcs7"
)

// Object identifiers the verification looks for.
var (
	oidTimeStamping         = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidExtKeyUsage          = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidContentTypeTSTInfo   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidSigningCertificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertificateV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSHA256               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512               = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// Token is a verified time-stamp: what it proves and who proved it.
type Token struct {
	// Response is the DER TimeStampResp as the authority sent it, the
	// evidence kept and handed out (.tsr).
	Response []byte
	// Algorithm and Digest are the message imprint: what was stamped.
	Algorithm Algorithm
	Digest    []byte
	GenTime   time.Time
	// Accuracy is the authority's stated accuracy of GenTime; zero when
	// it states none.
	Accuracy time.Duration
	Serial   *big.Int
	Policy   string
	Nonce    *big.Int
	// Signer is the authority's certificate, Chain the path from it to a
	// configured root, both as verified.
	Signer *x509.Certificate
	Chain  []*x509.Certificate
}

// SerialHex is the token's serial number as the original wrote it: 0x and
// upper-case hex.
func (t *Token) SerialHex() string {
	if t.Serial == nil {
		return ""
	}
	return "0x" + strings.ToUpper(t.Serial.Text(16))
}

// VerifyError is a response that is no valid proof; Reason says which check
// it failed, in words fit for the file's status.
type VerifyError struct {
	Reason string
}

func (e *VerifyError) Error() string { return "timestamp: invalid response: " + e.Reason }

func invalid(format string, args ...any) *VerifyError {
	return &VerifyError{Reason: fmt.Sprintf(format, args...)}
}

// RefusedError is an authority's answer that it will not stamp: a status
// other than granted.
type RefusedError struct {
	Status      int
	StatusText  string
	FailureInfo string
}

func (e *RefusedError) Error() string {
	msg := fmt.Sprintf("timestamp: authority refused the request: status %s", statusName(e.Status))
	if e.StatusText != "" {
		msg += " (" + e.StatusText + ")"
	}
	if e.FailureInfo != "" {
		msg += ", failure " + e.FailureInfo
	}
	return msg
}

func statusName(s int) string {
	switch s {
	case 0:
		return "granted"
	case 1:
		return "grantedWithMods"
	case 2:
		return "rejection"
	case 3:
		return "waiting"
	case 4:
		return "revocationWarning"
	case 5:
		return "revocationNotification"
	}
	return fmt.Sprintf("%d", s)
}

// Expect is what a response must prove.
type Expect struct {
	Algorithm Algorithm
	// Digest is the digest of the stamped data with Algorithm.
	Digest []byte
	// Nonce, when set, must be echoed.
	Nonce *big.Int
	// Roots are the trust anchors the signer must chain to at the
	// token's time; Intermediates may help build the path.
	Roots         *x509.CertPool
	Intermediates []*x509.Certificate
	// Policy, when set, must be the token's policy.
	Policy string
}

// respEnvelope is TimeStampResp (RFC 3161 §2.4.2), parsed here so that a
// refusal's status text and failure reach the caller.
type respEnvelope struct {
	Status struct {
		Status       int
		StatusString []string       `asn1:"optional,utf8"`
		FailInfo     asn1.BitString `asn1:"optional"`
	}
	Token asn1.RawValue `asn1:"optional"`
}

var failureNames = map[int]string{0: "badAlg", 2: "badRequest", 5: "badDataFormat", 14: "timeNotAvailable",
	15: "unacceptedPolicy", 16: "unacceptedExtension", 17: "addInfoNotAvailable", 25: "systemFailure"}

// ParseResponse splits a DER TimeStampResp into its status and token,
// refusing anything but a granted status.
func ParseResponse(der []byte) (token []byte, err error) {
	var env respEnvelope
	rest, err := asn1.Unmarshal(der, &env)
	if err != nil {
		return nil, invalid("not a DER TimeStampResp: %v", err)
	}
	if len(rest) > 0 {
		return nil, invalid("trailing data after the TimeStampResp")
	}
	if env.Status.Status != 0 {
		re := &RefusedError{Status: env.Status.Status, StatusText: strings.Join(env.Status.StatusString, "; ")}
		var fails []string
		for bit, name := range failureNames {
			if env.Status.FailInfo.At(bit) == 1 {
				fails = append(fails, name)
			}
		}
		re.FailureInfo = strings.Join(fails, ",")
		return nil, re
	}
	if len(env.Token.FullBytes) == 0 {
		return nil, invalid("status granted but no time-stamp token")
	}
	return env.Token.FullBytes, nil
}

// Verify checks a DER TimeStampResp against what it must prove: status
// granted, the message imprint, the nonce, the CMS signature, the signer's
// critical id-kp-timeStamping extended key usage and its chain to the
// roots at the token's time, the ESSCertID or ESSCertIDv2 naming the
// signer, and the policy. Any failure is a *VerifyError or *RefusedError
// naming the check.
func Verify(der []byte, want Expect) (*Token, error) {
	raw, err := ParseResponse(der)
	if err != nil {
		return nil, err
	}
	tok, err := VerifyToken(raw, want)
	if err != nil {
		return nil, err
	}
	tok.Response = der
	return tok, nil
}

// VerifyToken checks a DER TimeStampToken (the CMS SignedData) as Verify
// checks the response around it.
func VerifyToken(raw []byte, want Expect) (*Token, error) {
	p7, err := parsePKCS7(raw)
	if err != nil {
		return nil, invalid("the token is not CMS SignedData: %v", err)
	}
	if len(p7.Signers) != 1 {
		return nil, invalid("the token has %d signers, not one", len(p7.Signers))
	}
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, invalid("the token does not carry its signer's certificate")
	}
	var ctype asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeContentType, &ctype); err != nil || !ctype.Equal(oidContentTypeTSTInfo) {
		return nil, invalid("the signed content is not a TSTInfo")
	}
	// Signature and message digest, without a chain: the chain is
	// checked below at the token's time, not now.
	if err := p7.Verify(); err != nil {
		return nil, invalid("signature does not verify: %v", err)
	}
	ts, err := parseTSTInfo(p7.Content)
	if err != nil {
		return nil, err
	}
	alg, ok := algorithmOfOID(ts.MessageImprint.HashAlgorithm.Algorithm)
	if !ok || alg != want.Algorithm {
		return nil, invalid("message imprint uses %s, not the requested %s", oidName(ts.MessageImprint.HashAlgorithm.Algorithm), want.Algorithm)
	}
	if !bytes.Equal(ts.MessageImprint.HashedMessage, want.Digest) {
		return nil, invalid("message imprint does not match the file's %s digest", want.Algorithm)
	}
	if want.Nonce != nil && (ts.Nonce == nil || ts.Nonce.Cmp(want.Nonce) != 0) {
		return nil, invalid("nonce not echoed")
	}
	if want.Policy != "" && ts.Policy.String() != want.Policy {
		return nil, invalid("policy %s is not the configured %s", ts.Policy, want.Policy)
	}
	if err := checkTimeStampingEKU(signer); err != nil {
		return nil, err
	}
	if err := checkESSCertID(p7, signer); err != nil {
		return nil, err
	}
	if want.Roots == nil {
		return nil, invalid("no trusted roots configured for the authority")
	}
	inter := x509.NewCertPool()
	for _, c := range p7.Certificates {
		inter.AddCert(c)
	}
	for _, c := range want.Intermediates {
		inter.AddCert(c)
	}
	chains, err := signer.Verify(x509.VerifyOptions{
		Roots: want.Roots, Intermediates: inter, CurrentTime: ts.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return nil, invalid("signer certificate does not chain to the authority's roots at %s: %v", ts.Time.UTC().Format(time.RFC3339), err)
	}
	return &Token{
		Algorithm: alg, Digest: ts.MessageImprint.HashedMessage, GenTime: ts.Time.UTC(), Accuracy: ts.accuracy(),
		Serial: ts.SerialNumber, Policy: ts.Policy.String(), Nonce: ts.Nonce, Signer: signer, Chain: chains[0],
	}, nil
}

// parseMu serializes the parsing of CMS structures: the pinned pkcs7
// package counts its nesting depth in a package variable while it
// converts BER to DER, unguarded, so two parses at once race.
var parseMu sync.Mutex //nolint:gochecknoglobals // guards a third party's global

func parsePKCS7(raw []byte) (*pkcs7.PKCS7, error) {
	parseMu.Lock()
	defer parseMu.Unlock()
	return pkcs7.Parse(raw)
}

// checkTimeStampingEKU requires what RFC 3161 §2.3 does of a TSA's
// certificate: one extended key usage extension, critical, with
// id-kp-timeStamping as its only purpose.
func checkTimeStampingEKU(c *x509.Certificate) error {
	var eku *pkix.Extension
	for i := range c.Extensions {
		if c.Extensions[i].Id.Equal(oidExtKeyUsage) {
			if eku != nil {
				return invalid("signer certificate has two extended key usage extensions")
			}
			eku = &c.Extensions[i]
		}
	}
	if eku == nil {
		return invalid("signer certificate lacks the id-kp-timeStamping extended key usage")
	}
	if !eku.Critical {
		return invalid("signer certificate's extended key usage is not critical")
	}
	var purposes []asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(eku.Value, &purposes); err != nil {
		return invalid("signer certificate's extended key usage does not parse")
	}
	if len(purposes) != 1 || !purposes[0].Equal(oidTimeStamping) {
		return invalid("signer certificate's extended key usage is not id-kp-timeStamping alone")
	}
	return nil
}

type essIssuerSerial struct {
	Issuer asn1.RawValue // GeneralNames
	Serial *big.Int
}

type essCertID struct {
	CertHash     []byte
	IssuerSerial essIssuerSerial `asn1:"optional"`
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  essIssuerSerial `asn1:"optional"`
}

type signingCertificate struct {
	Certs    []essCertID
	Policies asn1.RawValue `asn1:"optional"`
}

type signingCertificateV2 struct {
	Certs    []essCertIDv2
	Policies asn1.RawValue `asn1:"optional"`
}

// checkESSCertID requires the signed SigningCertificate (RFC 2634) or
// SigningCertificateV2 (RFC 5035) attribute, whose first entry must name
// the certificate that verified the signature: otherwise a certificate
// could be swapped for another with the same key.
func checkESSCertID(p7 *pkcs7.PKCS7, signer *x509.Certificate) error {
	var v2 signingCertificateV2
	if err := p7.UnmarshalSignedAttribute(oidSigningCertificateV2, &v2); err == nil {
		if len(v2.Certs) == 0 {
			return invalid("ESSCertIDv2 names no certificate")
		}
		id := v2.Certs[0]
		h := crypto.SHA256
		if len(id.HashAlgorithm.Algorithm) > 0 {
			switch {
			case id.HashAlgorithm.Algorithm.Equal(oidSHA256):
			case id.HashAlgorithm.Algorithm.Equal(oidSHA384):
				h = crypto.SHA384
			case id.HashAlgorithm.Algorithm.Equal(oidSHA512):
				h = crypto.SHA512
			default:
				return invalid("ESSCertIDv2 uses an unsupported hash %s", id.HashAlgorithm.Algorithm)
			}
		}
		d := h.New()
		d.Write(signer.Raw)
		if !bytes.Equal(d.Sum(nil), id.CertHash) {
			return invalid("ESSCertIDv2 does not match the signer certificate")
		}
		return checkIssuerSerial(id.IssuerSerial, signer, "ESSCertIDv2")
	}
	var v1 signingCertificate
	if err := p7.UnmarshalSignedAttribute(oidSigningCertificate, &v1); err == nil {
		if len(v1.Certs) == 0 {
			return invalid("ESSCertID names no certificate")
		}
		sum := sha1.Sum(signer.Raw) //nolint:gosec // the hash ESSCertID is defined with
		if !bytes.Equal(sum[:], v1.Certs[0].CertHash) {
			return invalid("ESSCertID does not match the signer certificate")
		}
		return checkIssuerSerial(v1.Certs[0].IssuerSerial, signer, "ESSCertID")
	}
	return invalid("the token has neither an ESSCertID nor an ESSCertIDv2 signing certificate attribute")
}

// checkIssuerSerial compares the optional issuerSerial of an ESSCertID with
// the signer: its serial, and its issuer when given as a directory name.
func checkIssuerSerial(is essIssuerSerial, signer *x509.Certificate, what string) error {
	if is.Serial == nil {
		return nil
	}
	if is.Serial.Cmp(signer.SerialNumber) != 0 {
		return invalid("%s names serial %s, not the signer's", what, is.Serial)
	}
	// GeneralNames is a SEQUENCE of GeneralName; a directoryName is [4]
	// EXPLICIT Name.
	var names []asn1.RawValue
	if _, err := asn1.Unmarshal(is.Issuer.FullBytes, &names); err != nil {
		return invalid("%s issuer does not parse", what)
	}
	for _, n := range names {
		if n.Class == asn1.ClassContextSpecific && n.Tag == 4 {
			if !bytes.Equal(n.Bytes, signer.RawIssuer) {
				return invalid("%s names another issuer than the signer's", what)
			}
		}
	}
	return nil
}

// Imprint returns the algorithm and digest a DER TimeStampToken stamps,
// without verifying anything: what a token claims, to know what to check
// it against.
func Imprint(raw []byte) (Algorithm, []byte, error) {
	p7, err := parsePKCS7(raw)
	if err != nil {
		return "", nil, invalid("the token is not CMS SignedData: %v", err)
	}
	info, err := parseTSTInfo(p7.Content)
	if err != nil {
		return "", nil, err
	}
	oid := info.MessageImprint.HashAlgorithm.Algorithm
	alg, ok := algorithmOfOID(oid)
	if !ok {
		return "", nil, invalid("the token stamps with an unsupported hash %s", oid)
	}
	return alg, info.MessageImprint.HashedMessage, nil
}

// tstInfo is TSTInfo (RFC 3161 §2.4.2).
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	SerialNumber *big.Int
	Time         time.Time `asn1:"generalized"`
	Accuracy     struct {
		Seconds      int64 `asn1:"optional"`
		Milliseconds int64 `asn1:"tag:0,optional"`
		Microseconds int64 `asn1:"tag:1,optional"`
	} `asn1:"optional"`
	Ordering   bool             `asn1:"optional,default:false"`
	Nonce      *big.Int         `asn1:"optional"`
	TSA        asn1.RawValue    `asn1:"tag:0,optional"`
	Extensions []pkix.Extension `asn1:"tag:1,optional"`
}

func (t *tstInfo) accuracy() time.Duration {
	return time.Duration(t.Accuracy.Seconds)*time.Second + time.Duration(t.Accuracy.Milliseconds)*time.Millisecond +
		time.Duration(t.Accuracy.Microseconds)*time.Microsecond
}

func parseTSTInfo(content []byte) (*tstInfo, error) {
	var info tstInfo
	rest, err := asn1.Unmarshal(content, &info)
	if err != nil {
		return nil, invalid("TSTInfo does not parse: %v", err)
	}
	if len(rest) > 0 {
		return nil, invalid("trailing data after the TSTInfo")
	}
	if info.Version != 1 {
		return nil, invalid("TSTInfo version %d, not 1", info.Version)
	}
	if len(info.MessageImprint.HashedMessage) == 0 || info.SerialNumber == nil {
		return nil, invalid("TSTInfo lacks its imprint or serial number")
	}
	return &info, nil
}

func algorithmOfOID(oid asn1.ObjectIdentifier) (Algorithm, bool) {
	switch {
	case oid.Equal(oidSHA256):
		return SHA256, true
	case oid.Equal(oidSHA384):
		return SHA384, true
	case oid.Equal(oidSHA512):
		return SHA512, true
	}
	return "", false
}

func oidName(oid asn1.ObjectIdentifier) string {
	if alg, ok := algorithmOfOID(oid); ok {
		return string(alg)
	}
	if oid.Equal(asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}) {
		return "sha1"
	}
	return oid.String()
}
