package timestamping

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/timestamp"
)

var errNotStamped = tenantry.Errorf(tenantry.EBadRequest, "File has no valid timestamp")

// Proof is a file's latest time-stamp response, as kept.
type Proof struct {
	FileID   string
	Response []byte
}

// Download returns the DER TimeStampResp of a file's own stamp, the one
// over its content. Any member may download.
func (s *Service) Download(ctx context.Context, tenantID, fileID string) (*Proof, error) {
	_, lease, err := s.open(ctx, tenantID, permission.FilesRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	toks, err := s.stampedTokens(ctx, lease.DB(), fileID)
	if err != nil {
		return nil, err
	}
	// The latest token over the file itself: a forced re-stamp replaces
	// the first, archive stamps are over tokens, not the file.
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].Kind == KindFile {
			return &Proof{FileID: fileID, Response: toks[i].Response}, nil
		}
	}
	return nil, errNotStamped
}

func (s *Service) stampedTokens(ctx context.Context, q sqldb.Querier, fileID string) ([]StoredToken, error) {
	st, err := s.status(ctx, q, fileID)
	if err != nil {
		return nil, err
	}
	if st.Status != Stamped {
		return nil, errNotStamped
	}
	return tokensOf(ctx, q, fileID)
}

// Check is the outcome of verifying a token now.
type Check struct {
	Valid  bool
	Reason string
	// Token describes what was verified, when it parsed.
	Token     *timestamp.Token
	Authority string
	// Chain reports each token of a file's evidence, in order.
	Chain      []ChainCheck
	VerifiedAt time.Time
}

// ChainCheck is the verification of one token of a file's chain.
type ChainCheck struct {
	Seq       int
	Kind      string
	Authority string
	GenTime   time.Time
	Valid     bool
	Reason    string
}

// Verify verifies again, now, a file's kept evidence against its stored
// content: the first token over the content's digest recomputed from the
// blob, each archive token over the token before it, each against its
// authority's configured roots. Any member may ask.
func (s *Service) Verify(ctx context.Context, tenantID, fileID string) (*Check, error) {
	_, lease, err := s.open(ctx, tenantID, permission.FilesRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	db := lease.DB()
	toks, err := s.stampedTokens(ctx, db, fileID)
	if err != nil {
		return nil, err
	}
	f, err := findFile(ctx, db, fileID)
	if err != nil {
		return nil, err
	}
	digests, err := s.contentDigests(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &Check{Valid: true, VerifiedAt: sqldb.Now()}
	var prev []byte
	for _, t := range toks {
		alg, _ := timestamp.ParseAlgorithm(t.Algorithm)
		want := digests[alg]
		if t.Kind == KindArchive {
			h := alg.Hash().New()
			h.Write(prev)
			want = h.Sum(nil)
		} else if t.Kind == KindFile {
			// A forced re-stamp starts the chain again.
			out.Chain = out.Chain[:0]
			out.Valid = true
		}
		c := ChainCheck{Seq: t.Seq, Kind: t.Kind, Authority: t.Authority, GenTime: t.GenTime, Valid: true}
		a := s.byName[t.Authority]
		var tok *timestamp.Token
		if a == nil {
			c.Valid, c.Reason = false, "authority "+t.Authority+" is no longer configured"
		} else if tok, err = timestamp.Verify(t.Response, a.Expect(alg, want)); err != nil {
			c.Valid, c.Reason = false, timestamp.Reason(err)
		}
		if !c.Valid && out.Valid {
			out.Valid, out.Reason = false, fmt.Sprintf("token %d: %s", t.Seq, c.Reason)
		}
		if t.Kind == KindFile && tok != nil {
			out.Token, out.Authority = tok, t.Authority
		}
		out.Chain = append(out.Chain, c)
		prev = t.Response
	}
	if out.Valid {
		if err := touchVerified(ctx, db, fileID, out.VerifiedAt); err != nil {
			return nil, err
		}
	}
	audit.SetTarget(ctx, "file", fileID)
	audit.Annotate(ctx, "valid", out.Valid)
	return out, nil
}

// contentDigests reads a file's content once and returns its digest with
// each algorithm, checking it is still the content recorded.
func (s *Service) contentDigests(ctx context.Context, f *fileRow) (map[timestamp.Algorithm][]byte, error) {
	rc, err := s.blobs.Open(ctx, f.StorageKey, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("timestamping: read file %s: %w", f.ID, err)
	}
	defer rc.Close()
	sums, err := digestsOf(rc)
	if err != nil {
		return nil, fmt.Errorf("timestamping: read file %s: %w", f.ID, err)
	}
	if hex.EncodeToString(sums[timestamp.SHA256]) != f.SHA256 {
		// Evidence over the recorded digest still proves the recorded
		// content; the stored bytes no longer are it.
		s.logger.ErrorContext(ctx, "a file's stored content no longer matches its SHA-256", "file_id", f.ID)
	}
	return sums, nil
}

func digestsOf(r io.Reader) (map[timestamp.Algorithm][]byte, error) {
	hs := map[timestamp.Algorithm]hash.Hash{timestamp.SHA256: sha256.New(), timestamp.SHA384: sha512.New384(), timestamp.SHA512: sha512.New()}
	w := io.MultiWriter(hs[timestamp.SHA256], hs[timestamp.SHA384], hs[timestamp.SHA512])
	if _, err := io.Copy(w, r); err != nil {
		return nil, err
	}
	out := map[timestamp.Algorithm][]byte{}
	for a, h := range hs {
		out[a] = h.Sum(nil)
	}
	return out, nil
}

// VerifyEvidence checks a TimeStampResp received from elsewhere against a
// content or a digest, trusting any configured authority: the first whose
// roots and policy the token satisfies. content, when not nil, is hashed
// with the token's algorithm; otherwise digest is compared as given.
func (s *Service) VerifyEvidence(ctx context.Context, tsr []byte, content io.Reader, digest []byte) (*Check, error) {
	if _, ok := tenantry.PrincipalFromContext(ctx); !ok {
		return nil, tenantry.Errorf(tenantry.EUnauthorized, "Authentication required")
	}
	raw, err := timestamp.ParseResponse(tsr)
	if err != nil {
		var re *timestamp.RefusedError
		if errors.As(err, &re) {
			return &Check{Reason: timestamp.Reason(err), VerifiedAt: sqldb.Now()}, nil
		}
		return nil, tenantry.Errorf(tenantry.EBadRequest, "tsr is not a DER TimeStampResp")
	}
	alg, imprint, err := timestamp.Imprint(raw)
	if err != nil {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "tsr: %s", timestamp.Reason(err))
	}
	if content != nil {
		sums, err := digestsOf(content)
		if err != nil {
			return nil, err
		}
		digest = sums[alg]
	} else if len(digest) != alg.Hash().Size() {
		return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"digest": {fmt.Sprintf("The token stamps a %s digest: give %d bytes in hex.", alg, alg.Hash().Size())}}}
	}
	out := &Check{VerifiedAt: sqldb.Now()}
	if !bytes.Equal(imprint, digest) {
		out.Reason = "verification failed: message imprint does not match the given " + map[bool]string{true: "file", false: "digest"}[content != nil]
		return out, nil
	}
	var reasons []string
	for _, a := range s.cfg.Authorities {
		tok, err := timestamp.Verify(tsr, a.Expect(alg, digest))
		if err == nil {
			out.Valid, out.Token, out.Authority = true, tok, a.Name
			return out, nil
		}
		reasons = append(reasons, a.Name+": "+timestamp.Reason(err))
	}
	if len(reasons) == 0 {
		out.Reason = "no time-stamping authority is configured to trust"
	} else {
		out.Reason = strings.Join(reasons, "; ")
	}
	return out, nil
}

// Evidence is a file's evidence archive.
type Evidence struct {
	FileID string
	Zip    []byte
}

// Evidence returns one zip archive proving a file's time-stamp: its
// digest, each token of its chain (.tsr), the certificates of each token's
// authority, and how to check them with openssl. Any member may download.
func (s *Service) Evidence(ctx context.Context, tenantID, fileID string) (*Evidence, error) {
	_, lease, err := s.open(ctx, tenantID, permission.FilesRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	toks, err := s.stampedTokens(ctx, lease.DB(), fileID)
	if err != nil {
		return nil, err
	}
	f, err := findFile(ctx, lease.DB(), fileID)
	if err != nil {
		return nil, err
	}
	// The chain starts at the latest token over the file itself.
	start := 0
	for i, t := range toks {
		if t.Kind == KindFile {
			start = i
		}
	}
	toks = toks[start:]
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name string, body []byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: toks[0].CreatedAt})
		if err != nil {
			return err
		}
		_, err = w.Write(body)
		return err
	}
	first := toks[0]
	digestText := fmt.Sprintf("file_id: %s\nsha256: %s\nsize: %d\nstamped_algorithm: %s\nstamped_digest: %s\n",
		f.ID, f.SHA256, f.Size, first.Algorithm, first.Imprint)
	if err := add("digest.txt", []byte(digestText)); err != nil {
		return nil, err
	}
	var chainPEM bytes.Buffer
	seenCert := map[string]bool{}
	addCert := func(raw []byte) {
		sum := sha256.Sum256(raw)
		key := string(sum[:])
		if !seenCert[key] {
			seenCert[key] = true
			pem.Encode(&chainPEM, &pem.Block{Type: "CERTIFICATE", Bytes: raw}) //nolint:errcheck // writes to memory
		}
	}
	var readme strings.Builder
	fmt.Fprintf(&readme, readmeHead, f.ID, first.Algorithm, first.Imprint, f.SHA256)
	for i, t := range toks {
		name := tokenName(i, t)
		if err := add(name, t.Response); err != nil {
			return nil, err
		}
		if a := s.byName[t.Authority]; a != nil {
			alg, _ := timestamp.ParseAlgorithm(t.Algorithm)
			imprint, _ := hex.DecodeString(t.Imprint)
			if tok, err := timestamp.Verify(t.Response, a.Expect(alg, imprint)); err == nil {
				for _, c := range tok.Chain {
					addCert(c.Raw)
				}
			}
			for _, c := range a.Certificates {
				addCert(c.Raw)
			}
		}
		fmt.Fprintf(&readme, "\n%d. %s — %s token from %s, genTime %s, serial %s, policy %s\n",
			i+1, name, t.Kind, t.Authority, t.GenTime.UTC().Format(time.RFC3339), t.Serial, t.Policy)
		if i == 0 {
			fmt.Fprintf(&readme, "   openssl ts -verify -digest %s -in %s -CAfile chain.pem\n", t.Imprint, name)
			fmt.Fprintf(&readme, "   or, with the file itself at hand (its %s is %s):\n", t.Algorithm, t.Imprint)
			fmt.Fprintf(&readme, "   openssl ts -verify -data FILE -in %s -CAfile chain.pem\n", name)
		} else {
			fmt.Fprintf(&readme, "   It stamps the whole of %s, so the chain outlives the earlier authority's certificate:\n", tokenName(i-1, toks[i-1]))
			fmt.Fprintf(&readme, "   openssl ts -verify -data %s -in %s -CAfile chain.pem\n", tokenName(i-1, toks[i-1]), name)
		}
	}
	readme.WriteString(readmeTail)
	if err := add("chain.pem", chainPEM.Bytes()); err != nil {
		return nil, err
	}
	if err := add("README.txt", []byte(readme.String())); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return &Evidence{FileID: fileID, Zip: buf.Bytes()}, nil
}

func tokenName(i int, t StoredToken) string {
	if t.Kind == KindArchive {
		return fmt.Sprintf("%d-archive-timestamp.tsr", i+1)
	}
	return fmt.Sprintf("%d-file-timestamp.tsr", i+1)
}

const readmeHead = `Evidence of a trusted time-stamp (RFC 3161)

File %s: its %s digest is %s (SHA-256 %s).
Each .tsr below is a DER TimeStampResp signed by a time-stamping authority.
chain.pem holds the certificates of the authorities (roots and
intermediates) that the tokens were verified against when they were kept.
Check each token with OpenSSL:
`

const readmeTail = `
"Verification: OK" from each command proves that the file's digest existed
no later than the first token's genTime, and each later token proves the
one before it existed no later than its own genTime. If you trust roots
other than those in chain.pem, give them to -CAfile instead.
`
