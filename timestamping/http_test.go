// The tests of time-stamping run complete tenantry instances against local
// authorities, over HTTP, in a package of their own: their stamps take
// time, which the api package's tests need for themselves.
package timestamping_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenantdb"
	"github.com/tenantry/tenantry/timestamp/tsatest"
)

// docsEnv is a tenant with one member of each role.
type docsEnv struct {
	*apptest.Env
	admin, user, viewer, stranger *apptest.User
	tenantID                      string
}

func newDocsEnv(t *testing.T, shape config.Shape, tune ...func(*config.Config)) *docsEnv {
	t.Helper()
	cfg := apptest.Config(t, shape)
	for _, f := range tune {
		f(&cfg)
	}
	env := apptest.Start(t, cfg)
	d := &docsEnv{Env: env, admin: env.SignUp(t, "Admin"), user: env.SignUp(t, "User"), viewer: env.SignUp(t, "Viewer"), stranger: env.SignUp(t, "Stranger")}
	d.tenantID = env.CreateTenant(t, d.admin, "Documents")
	env.AddMember(t, d.admin, d.tenantID, d.user, "user")
	env.AddMember(t, d.admin, d.tenantID, d.viewer, "viewer")
	return d
}

func (d *docsEnv) docs() string { return "/api/tenants/" + d.tenantID + "/documents" }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// tsaAuthority is one authority as the operator configures it.
type tsaAuthority struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Roots  string `json:"roots_pem"`
	Policy string `json:"policy_oid,omitempty"`
}

// withAuthorities configures the authorities, and retries quick enough
// for a test.
func withAuthorities(list ...tsaAuthority) func(*config.Config) {
	return func(c *config.Config) {
		b, err := json.Marshal(list)
		if err != nil {
			panic(err)
		}
		c.TSAAuthorities = string(b)
		c.TSARetryDelay = 20 * time.Millisecond
		c.TSAMaxAttempts = 2
		c.TSARate = 0
	}
}

// tsaEnv is a tenant with a local OpenSSL authority and a digitorus one
// configured.
type tsaEnv struct {
	*docsEnv
	openssl *tsatest.OpenSSL
	goTSA   *tsatest.Authority
}

func newTSAEnv(t *testing.T, shape config.Shape, tune ...func(*config.Config)) *tsaEnv {
	t.Helper()
	o := tsatest.NewOpenSSL(t, "OpenSSL")
	g := tsatest.NewAuthority(t, "Go", tsatest.SignerOptions{})
	auth := withAuthorities(
		tsaAuthority{Name: "openssl", URL: o.URL, Roots: o.CA.ChainPEM(), Policy: tsatest.DefaultPolicy},
		tsaAuthority{Name: "go", URL: g.URL, Roots: g.CA.RootPEM()},
	)
	return &tsaEnv{docsEnv: newDocsEnv(t, shape, append([]func(*config.Config){auth}, tune...)...), openssl: o, goTSA: g}
}

func (e *tsaEnv) settings() string { return "/api/tenants/" + e.tenantID + "/timestamping" }

func (e *tsaEnv) file(id string) string {
	return "/api/tenants/" + e.tenantID + "/files/" + id + "/timestamp"
}

func (e *tsaEnv) enable(t *testing.T, body map[string]any) {
	t.Helper()
	body["enabled"] = true
	e.Do(t, apptest.Request{Method: http.MethodPut, Path: e.settings(), Token: e.admin.AccessToken, Body: body}).Expect(t, 200, "")
}

type tsStatus struct {
	FileID        string   `json:"file_id"`
	Status        string   `json:"status"`
	Algorithm     *string  `json:"hash_algorithm"`
	Authority     *string  `json:"authority"`
	GenTime       *string  `json:"gen_time"`
	Serial        *string  `json:"serial_number"`
	Policy        *string  `json:"policy_oid"`
	Accuracy      *float64 `json:"accuracy_seconds"`
	VerifiedAt    *string  `json:"verified_at"`
	FailureReason *string  `json:"failure_reason"`
	Attempts      int      `json:"attempts"`
	ChainLength   int      `json:"chain_length"`
}

// waitDone waits until the file's stamp is no longer pending (nor not yet
// requested).
func (e *tsaEnv) waitDone(t *testing.T, fileID string) tsStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st tsStatus
		e.Get(t, e.file(fileID), e.viewer.AccessToken).Expect(t, 200, "").Data(t, &st)
		if st.Status == "stamped" || st.Status == "failed" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("file %s still %s: %+v", fileID, st.Status, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func randomContent(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// opensslVerify checks a .tsr against content with openssl ts -verify.
func opensslVerify(t *testing.T, tsr, content []byte, caFile string) {
	t.Helper()
	tsatest.VerifyWithOpenSSL(t, tsr, content, "", caFile)
}

// Ensure the setting is off by default, admins only, and checked.
func TestTimestampingSettings(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		e := newTSAEnv(t, shape)
		var set struct {
			Enabled   bool     `json:"enabled"`
			Authority []string `json:"authority"`
			Algorithm string   `json:"hash_algorithm"`
			Available []string `json:"available_authorities"`
		}
		e.Get(t, e.settings(), e.admin.AccessToken).Expect(t, 200, "").Data(t, &set)
		if set.Enabled || len(set.Authority) != 0 || set.Algorithm != "sha256" || strings.Join(set.Available, ",") != "openssl,go" {
			t.Fatalf("default settings %+v", set)
		}
		e.Get(t, e.settings(), e.user.AccessToken).Expect(t, 403, "FORBIDDEN")
		e.Get(t, e.settings(), e.stranger.AccessToken).Expect(t, 404, "NOT_FOUND")
		put := func(token string, body any) *apptest.Response {
			return e.Do(t, apptest.Request{Method: http.MethodPut, Path: e.settings(), Token: token, Body: body})
		}
		put(e.user.AccessToken, map[string]any{"enabled": true, "authority": "go"}).Expect(t, 403, "FORBIDDEN")
		put(e.admin.AccessToken, map[string]any{"enabled": true}).Expect(t, 400, "VALIDATION_ERROR")
		put(e.admin.AccessToken, map[string]any{"enabled": true, "authority": "digicert"}).Expect(t, 400, "VALIDATION_ERROR")
		put(e.admin.AccessToken, map[string]any{"hash_algorithm": "md5"}).Expect(t, 400, "VALIDATION_ERROR")
		put(e.admin.AccessToken, map[string]any{"surprise": 1}).Expect(t, 400, "VALIDATION_ERROR")
		put(e.admin.AccessToken, map[string]any{"enabled": true, "authority": "go"}).Expect(t, 200, "").Data(t, &set)
		if !set.Enabled || strings.Join(set.Authority, ",") != "go" {
			t.Fatalf("after PUT %+v", set)
		}
		put(e.admin.AccessToken, map[string]any{"authority": []string{"openssl", "go"}, "hash_algorithm": "sha512"}).Expect(t, 200, "").Data(t, &set)
		if !set.Enabled || strings.Join(set.Authority, ",") != "openssl,go" || set.Algorithm != "sha512" {
			t.Fatalf("after second PUT %+v", set)
		}
		e.Get(t, e.settings(), e.admin.AccessToken).Expect(t, 200, "").Data(t, &set)
		if strings.Join(set.Authority, ",") != "openssl,go" || set.Algorithm != "sha512" {
			t.Fatalf("read back %+v", set)
		}
	})
}

// Ensure a new file of a tenant with time-stamping on is stamped once by
// OpenSSL's authority, verifiably, and that every way of reading and
// proving the stamp works; a tenant with it off sends nothing.
func TestTimestampOnUpload(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		e := newTSAEnv(t, shape)
		off := randomContent(t, 2000)
		offDoc := e.Upload(t, e.user, e.tenantID, "off.bin", off)
		e.enable(t, map[string]any{"authority": "openssl"})
		content := randomContent(t, 10000)
		doc := e.Upload(t, e.user, e.tenantID, "contract.pdf", content)
		if offDoc.TimestampStatus != "none" || doc.TimestampStatus != "pending" {
			t.Fatalf("uploads answered timestamp_status %q while off, %q while on", offDoc.TimestampStatus, doc.TimestampStatus)
		}
		st := e.waitDone(t, doc.FileID)
		if st.Status != "stamped" || *st.Authority != "openssl" || *st.Algorithm != "sha256" || *st.Policy != tsatest.DefaultPolicy ||
			st.GenTime == nil || st.Serial == nil || !strings.HasPrefix(*st.Serial, "0x") || st.VerifiedAt == nil ||
			st.Accuracy == nil || *st.Accuracy != 1.5 || st.FailureReason != nil || st.ChainLength != 1 {
			t.Fatalf("status %+v", st)
		}
		// The same content again shares the file, and its stamp.
		if c := e.Upload(t, e.admin, e.tenantID, "copy.pdf", content); c.TimestampStatus != "stamped" {
			t.Fatalf("a copy of a stamped file answered timestamp_status %q", c.TimestampStatus)
		}
		time.Sleep(300 * time.Millisecond)
		if n := e.openssl.Requests(); n != 1 {
			t.Fatalf("%d requests to the authority, want 1", n)
		}
		var none tsStatus
		e.Get(t, e.file(offDoc.FileID), e.viewer.AccessToken).Expect(t, 200, "").Data(t, &none)
		if none.Status != "none" {
			t.Fatalf("file uploaded while off: %+v", none)
		}

		res := e.Get(t, e.file(doc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "")
		if ct := res.Header.Get("Content-Type"); ct != "application/timestamp-reply" ||
			res.Header.Get("Content-Disposition") != `attachment; filename="file_`+doc.FileID+`_timestamp.tsr"` {
			t.Fatalf("download headers %v", res.Header)
		}
		opensslVerify(t, res.Body, content, e.openssl.RootFile)
		e.Get(t, e.file(offDoc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 400, "BAD_REQUEST")

		var v struct {
			Valid     bool    `json:"valid"`
			Reason    *string `json:"reason"`
			Authority *string `json:"authority"`
			Chain     []struct {
				Valid bool `json:"valid"`
			} `json:"chain"`
		}
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: e.file(doc.FileID) + "/verify", Token: e.viewer.AccessToken}).Expect(t, 200, "").Data(t, &v)
		if !v.Valid || v.Reason != nil || *v.Authority != "openssl" || len(v.Chain) != 1 {
			t.Fatalf("verify %+v", v)
		}

		// The evidence archive checks with nothing but OpenSSL.
		ev := e.Get(t, e.file(doc.FileID)+"/evidence", e.viewer.AccessToken).Expect(t, 200, "")
		if ev.Header.Get("Content-Type") != "application/zip" {
			t.Fatalf("evidence type %q", ev.Header.Get("Content-Type"))
		}
		files := unzip(t, ev.Body)
		for _, name := range []string{"digest.txt", "1-file-timestamp.tsr", "chain.pem", "README.txt"} {
			if _, ok := files[name]; !ok {
				t.Fatalf("evidence lacks %s: has %v", name, keys(files))
			}
		}
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		sha := sha256Hex(content)
		if !strings.Contains(string(files["digest.txt"]), sha) || !strings.Contains(string(files["README.txt"]), "openssl ts -verify") {
			t.Fatalf("digest.txt %s\nREADME %s", files["digest.txt"], files["README.txt"])
		}
		out, err := exec.Command("openssl", "ts", "-verify", "-digest", sha, "-in", filepath.Join(dir, "1-file-timestamp.tsr"),
			"-CAfile", filepath.Join(dir, "chain.pem")).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("Verification: OK")) {
			t.Fatalf("openssl on the evidence: %v %s", err, out)
		}

		// The settings change, the stamp and the verification are audited.
		for _, action := range []string{"timestamping.update", "file.timestamp.stamped"} {
			if n := e.auditEntries(t, action, 1); n != 1 {
				t.Errorf("%d %s audit entries, want 1", n, action)
			}
		}

		// Listings show each document's stamp, and filter by it.
		var list struct {
			Documents []struct {
				ID              string `json:"id"`
				TimestampStatus string `json:"timestamp_status"`
			} `json:"documents"`
			Pagination struct {
				Total int `json:"total"`
			} `json:"pagination"`
		}
		e.Get(t, e.docs()+"?timestamp_status=stamped", e.viewer.AccessToken).Expect(t, 200, "").Data(t, &list)
		if list.Pagination.Total != 2 || len(list.Documents) != 2 || list.Documents[0].TimestampStatus != "stamped" {
			t.Fatalf("stamped documents %+v", list)
		}
		e.Get(t, e.docs()+"?timestamp_status=none", e.viewer.AccessToken).Expect(t, 200, "").Data(t, &list)
		if list.Pagination.Total != 1 || list.Documents[0].ID != offDoc.ID || list.Documents[0].TimestampStatus != "none" {
			t.Fatalf("unstamped documents %+v", list)
		}
		e.Get(t, e.docs()+"?timestamp_status=failed&filename=contract", e.viewer.AccessToken).Expect(t, 200, "").Data(t, &list)
		if list.Pagination.Total != 0 {
			t.Fatalf("failed documents %+v", list)
		}
		e.Get(t, e.docs()+"?timestamp_status=maybe", e.viewer.AccessToken).Expect(t, 400, "BAD_REQUEST")

		// A token from elsewhere is checked against a file or a digest.
		body, ct := apptest.Multipart(t, apptest.Part{Name: "tsr", Filename: "a.tsr", Body: res.Body}, apptest.Part{Name: "file", Filename: "c.pdf", Body: content})
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/timestamps/verify", Token: e.stranger.AccessToken, Body: body, ContentType: ct}).
			Expect(t, 200, "").Data(t, &v)
		if !v.Valid || *v.Authority != "openssl" {
			t.Fatalf("external verify by file %+v", v)
		}
		body, ct = apptest.Multipart(t, apptest.Part{Name: "tsr", Filename: "a.tsr", Body: res.Body}, apptest.Part{Name: "digest", Body: []byte(sha)})
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/timestamps/verify", Token: e.stranger.AccessToken, Body: body, ContentType: ct}).
			Expect(t, 200, "").Data(t, &v)
		if !v.Valid {
			t.Fatalf("external verify by digest %+v", v)
		}
		body, ct = apptest.Multipart(t, apptest.Part{Name: "tsr", Filename: "a.tsr", Body: res.Body}, apptest.Part{Name: "file", Filename: "o.bin", Body: off})
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/timestamps/verify", Token: e.stranger.AccessToken, Body: body, ContentType: ct}).
			Expect(t, 200, "").Data(t, &v)
		if v.Valid || v.Reason == nil || !strings.Contains(*v.Reason, "imprint") {
			t.Fatalf("external verify of another file %+v", v)
		}
		body, ct = apptest.Multipart(t, apptest.Part{Name: "tsr", Filename: "a.tsr", Body: []byte("not a token")}, apptest.Part{Name: "digest", Body: []byte(sha)})
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/timestamps/verify", Token: e.stranger.AccessToken, Body: body, ContentType: ct}).
			Expect(t, 400, "BAD_REQUEST")
		body, ct = apptest.Multipart(t, apptest.Part{Name: "digest", Body: []byte(sha)})
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/timestamps/verify", Token: e.stranger.AccessToken, Body: body, ContentType: ct}).
			Expect(t, 400, "VALIDATION_ERROR")
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/timestamps/verify", Body: body, ContentType: ct}).Expect(t, 401, "UNAUTHORIZED")
	})
}

// Ensure a tenant's chosen algorithm is the one stamped.
func TestTimestampSHA512(t *testing.T) {
	t.Parallel()
	e := newTSAEnv(t, config.Embedded)
	e.enable(t, map[string]any{"authority": []string{"openssl"}, "hash_algorithm": "sha512"})
	content := randomContent(t, 5000)
	doc := e.Upload(t, e.user, e.tenantID, "big.bin", content)
	st := e.waitDone(t, doc.FileID)
	if st.Status != "stamped" || *st.Algorithm != "sha512" {
		t.Fatalf("status %+v", st)
	}
	res := e.Get(t, e.file(doc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "")
	sum := sha512.Sum512(content)
	tsatest.VerifyWithOpenSSL(t, res.Body, nil, hex.EncodeToString(sum[:]), e.openssl.RootFile)
	opensslVerify(t, res.Body, content, e.openssl.RootFile)
}

// Ensure an authority that is down is passed over for the next one.
func TestTimestampFailover(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		e := newTSAEnv(t, shape)
		e.openssl.Close()
		e.enable(t, map[string]any{"authority": []string{"openssl", "go"}})
		content := randomContent(t, 3000)
		doc := e.Upload(t, e.user, e.tenantID, "f.bin", content)
		st := e.waitDone(t, doc.FileID)
		if st.Status != "stamped" || *st.Authority != "go" || st.Attempts != 1 {
			t.Fatalf("status %+v", st)
		}
		res := e.Get(t, e.file(doc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "")
		opensslVerify(t, res.Body, content, e.goTSA.CA.WriteRoot(t, t.TempDir()))
	})
}

// Ensure each way an answer can fail to prove anything leaves the file
// failed with the reason, and no token kept.
func TestTimestampFailures(t *testing.T) {
	t.Parallel()
	good := tsatest.NewAuthority(t, "Good", tsatest.SignerOptions{})
	noEKU := tsatest.NewAuthorityUnder(t, good.CA, good.CA.NewSigner(t, "No EKU", tsatest.SignerOptions{NoEKU: true}))
	stranger := tsatest.NewAuthority(t, "Stranger", tsatest.SignerOptions{})
	faults := map[string]*tsatest.Authority{}
	for _, f := range []string{"imprint", "nonce", "signature", "granted", "down", "busy"} {
		faults[f] = tsatest.NewAuthorityUnder(t, good.CA, good.Signer)
	}
	faults["imprint"].SetFault(tsatest.WrongImprint)
	faults["nonce"].SetFault(tsatest.NoNonce)
	faults["signature"].SetFault(tsatest.BrokenSignature)
	faults["granted"].SetFault(tsatest.Rejection)
	faults["down"].SetFault(tsatest.Down)
	faults["busy"].SetFault(tsatest.TooManyRequests)
	faults["eku"], faults["root"] = noEKU, stranger
	var list []tsaAuthority
	for name, a := range faults {
		list = append(list, tsaAuthority{Name: name, URL: a.URL, Roots: good.CA.RootPEM()})
	}
	e := &tsaEnv{docsEnv: newDocsEnv(t, config.Embedded, withAuthorities(list...))}
	cases := []struct {
		authority, reason string
		attempts          int
	}{
		{"imprint", "verification failed: message imprint does not match", 1},
		{"nonce", "verification failed: nonce not echoed", 1},
		{"signature", "verification failed: signature does not verify", 1},
		{"eku", "verification failed: signer certificate lacks the id-kp-timeStamping extended key usage", 1},
		{"root", "verification failed: signer certificate does not chain to the authority's roots", 1},
		{"granted", "authority refused the request: status rejection", 1},
		{"down", "authority unreachable", 2},
		{"busy", "authority answered HTTP 429 Too Many Requests", 2},
	}
	for _, c := range cases {
		e.enable(t, map[string]any{"authority": c.authority})
		doc := e.Upload(t, e.admin, e.tenantID, c.authority+".bin", randomContent(t, 100))
		st := e.waitDone(t, doc.FileID)
		if st.Status != "failed" || st.FailureReason == nil || !strings.HasPrefix(*st.FailureReason, c.authority+": "+c.reason) ||
			st.Attempts != c.attempts || st.GenTime != nil || st.ChainLength != 0 {
			t.Errorf("%s: %+v (reason %v)", c.authority, st, deref(st.FailureReason))
		}
		e.Get(t, e.file(doc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 400, "BAD_REQUEST")
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: e.file(doc.FileID) + "/verify", Token: e.viewer.AccessToken}).Expect(t, 400, "BAD_REQUEST")
	}
	if n := faults["granted"].Requests(); n != 1 {
		t.Errorf("a refusal was retried: %d requests", n)
	}
	if n := faults["down"].Requests(); n != 2 {
		t.Errorf("an authority down was tried %d times, want 2", n)
	}
	// Each failure is an event.
	var evs struct {
		Events []struct {
			EventType string `json:"event_type"`
		} `json:"events"`
	}
	failed := 0
	for deadline := time.Now().Add(10 * time.Second); failed < len(cases) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// Events are listed once relayed from the outbox they commit to.
		e.Get(t, "/api/tenants/"+e.tenantID+"/events?per_page=100", e.admin.AccessToken).Expect(t, 200, "").Data(t, &evs)
		failed = 0
		for _, ev := range evs.Events {
			if ev.EventType == "file.timestamp_failed" {
				failed++
			}
		}
	}
	if failed != len(cases) {
		t.Errorf("%d file.timestamp_failed events, want %d", failed, len(cases))
	}
	// And an entry of the tenant's audit trail.
	if n := e.auditEntries(t, "file.timestamp.failed", len(cases)); n != len(cases) {
		t.Errorf("%d file.timestamp.failed audit entries, want %d", n, len(cases))
	}
}

// auditEntries counts the tenant's audit entries of an action, waiting a
// while for want of them: a job appends its entry once its work is
// committed, so possibly just after the test saw the work done.
func (e *tsaEnv) auditEntries(t *testing.T, action string, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var a struct {
			Pagination struct {
				Total int `json:"total"`
			} `json:"pagination"`
		}
		e.Get(t, "/api/tenants/"+e.tenantID+"/audit?per_page=1&action="+action, e.admin.AccessToken).Expect(t, 200, "").Data(t, &a)
		if a.Pagination.Total >= want || time.Now().After(deadline) {
			return a.Pagination.Total
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ensure the manual routes: admins only, tenant switched on, force
// really stamps again, and bulk requests are checked.
func TestTimestampCreateAndBulk(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		e := newTSAEnv(t, shape)
		content := randomContent(t, 500)
		doc := e.Upload(t, e.user, e.tenantID, "m.bin", content)
		create := func(token string, body any) *apptest.Response {
			return e.Do(t, apptest.Request{Method: http.MethodPost, Path: e.file(doc.FileID) + "/create", Token: token, Body: body})
		}
		create(e.admin.AccessToken, nil).Expect(t, 400, "BAD_REQUEST")
		e.enable(t, map[string]any{"authority": "go"})
		create(e.user.AccessToken, nil).Expect(t, 403, "FORBIDDEN")
		create(e.stranger.AccessToken, nil).Expect(t, 404, "NOT_FOUND")
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: e.file("00000000-0000-0000-0000-000000000000") + "/create", Token: e.admin.AccessToken}).
			Expect(t, 404, "NOT_FOUND")
		var c struct {
			FileID    string  `json:"file_id"`
			TaskID    *string `json:"task_id"`
			Status    string  `json:"status"`
			Timestamp *struct {
				Serial string `json:"serial_number"`
			} `json:"timestamp"`
		}
		create(e.admin.AccessToken, nil).Expect(t, 201, "").Data(t, &c)
		if c.Status != "pending" || c.TaskID == nil {
			t.Fatalf("create %+v", c)
		}
		first := e.waitDone(t, doc.FileID)
		if first.Status != "stamped" {
			t.Fatalf("after create %+v", first)
		}
		create(e.admin.AccessToken, map[string]any{"force": false}).Expect(t, 200, "").Data(t, &c)
		if c.Timestamp == nil || c.Timestamp.Serial != *first.Serial {
			t.Fatalf("already stamped %+v", c)
		}
		create(e.admin.AccessToken, map[string]any{"force": true}).Expect(t, 201, "")
		second := e.waitDone(t, doc.FileID)
		if second.Status != "stamped" || *second.Serial == *first.Serial || second.ChainLength != 2 {
			t.Fatalf("forced %+v after %+v", second, first)
		}
		res := e.Get(t, e.file(doc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "")
		opensslVerify(t, res.Body, content, e.goTSA.CA.WriteRoot(t, t.TempDir()))

		bulk := "/api/tenants/" + e.tenantID + "/files/timestamp/bulk"
		post := func(token string, body any) *apptest.Response {
			return e.Do(t, apptest.Request{Method: http.MethodPost, Path: bulk, Token: token, Body: body})
		}
		post(e.user.AccessToken, map[string]any{"file_ids": []string{doc.FileID}}).Expect(t, 403, "FORBIDDEN")
		post(e.admin.AccessToken, map[string]any{}).Expect(t, 400, "BAD_REQUEST")
		post(e.admin.AccessToken, map[string]any{"file_ids": []string{"not-a-uuid"}}).Expect(t, 400, "VALIDATION_ERROR")
		post(e.admin.AccessToken, map[string]any{"filter": map[string]any{"uploaded_before": "yesterday"}}).Expect(t, 400, "VALIDATION_ERROR")
		many := make([]string, 1001)
		for i := range many {
			many[i] = doc.FileID
		}
		post(e.admin.AccessToken, map[string]any{"file_ids": many}).Expect(t, 400, "VALIDATION_ERROR")

		// Two more files, uploaded while time-stamping is off.
		e.Do(t, apptest.Request{Method: http.MethodPut, Path: e.settings(), Token: e.admin.AccessToken, Body: map[string]any{"enabled": false}}).Expect(t, 200, "")
		ca, cb := randomContent(t, 100), randomContent(t, 100)
		a := e.Upload(t, e.user, e.tenantID, "a.bin", ca)
		b := e.Upload(t, e.user, e.tenantID, "b.bin", cb)
		post(e.admin.AccessToken, map[string]any{"filter": map[string]any{"not_timestamped": true}}).Expect(t, 400, "BAD_REQUEST")
		e.enable(t, map[string]any{})
		var r struct {
			Total     int     `json:"total_files"`
			Scheduled int     `json:"tasks_scheduled"`
			Minutes   float64 `json:"estimated_duration_minutes"`
		}
		post(e.admin.AccessToken, map[string]any{"filter": map[string]any{"uploaded_after": time.Now().Add(time.Hour).Format(time.RFC3339)}}).
			Expect(t, 200, "").Data(t, &r)
		if r.Total != 0 {
			t.Fatalf("future filter %+v", r)
		}
		post(e.admin.AccessToken, map[string]any{"filter": map[string]any{"not_timestamped": true}}).Expect(t, 201, "").Data(t, &r)
		if r.Total != 2 || r.Scheduled != 2 {
			t.Fatalf("bulk %+v", r)
		}
		root := e.goTSA.CA.WriteRoot(t, t.TempDir())
		for d, c := range map[*apptest.Document][]byte{a: ca, b: cb} {
			if st := e.waitDone(t, d.FileID); st.Status != "stamped" {
				t.Fatalf("bulk stamp %+v", st)
			}
			opensslVerify(t, e.Get(t, e.file(d.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "").Body, c, root)
		}
	})
}

func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// startStoppable starts tenantry like apptest.Start, but returns a stop
// that ends it there and then, as a worker that dies would.
func startStoppable(t *testing.T, cfg config.Config) (*apptest.Env, func()) {
	t.Helper()
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test", app.AsWorker())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Server)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close()
			a.Close()
		})
	}
	t.Cleanup(stop)
	return &apptest.Env{App: a, Server: srv, URL: srv.URL}, stop
}

// Ensure a worker stopped while its stamp is in flight leaves the file to
// be stamped by the next one, once.
func TestTimestampWorkerStoppedMidway(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		g := tsatest.NewAuthority(t, "Go", tsatest.SignerOptions{})
		cfg := apptest.Config(t, shape)
		withAuthorities(tsaAuthority{Name: "go", URL: g.URL, Roots: g.CA.RootPEM()})(&cfg)
		cfg.TSAMaxAttempts = 5
		cfg.ShutdownTimeout = 500 * time.Millisecond
		first, stop := startStoppable(t, cfg)
		admin := first.SignUp(t, "Admin")
		tenantID := first.CreateTenant(t, admin, "Stopped")
		first.Do(t, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/timestamping", Token: admin.AccessToken,
			Body: map[string]any{"enabled": true, "authority": "go"}}).Expect(t, 200, "")
		entered := g.Hold()
		content := randomContent(t, 1000)
		doc := first.Upload(t, admin, tenantID, "inflight.bin", content)
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("the stamp never reached the authority")
		}
		stop()
		g.Release()

		second := apptest.Start(t, cfg)
		e := &tsaEnv{docsEnv: &docsEnv{Env: second, admin: admin, viewer: admin, tenantID: tenantID}}
		st := e.waitDone(t, doc.FileID)
		if st.Status != "stamped" || st.ChainLength != 1 {
			t.Fatalf("after the restart %+v", st)
		}
		res := e.Get(t, e.file(doc.FileID)+"/download", admin.AccessToken).Expect(t, 200, "")
		opensslVerify(t, res.Body, content, g.CA.WriteRoot(t, t.TempDir()))
		// Nothing more is stamped later.
		time.Sleep(200 * time.Millisecond)
		if st := e.waitDone(t, doc.FileID); st.ChainLength != 1 || *st.Serial != *e.waitDone(t, doc.FileID).Serial {
			t.Fatalf("stamped again %+v", st)
		}
	})
}

// Ensure a request whose job was lost is enqueued again by the sweep, and
// that a token whose authority's certificate nears its end gets an archive
// time-stamp over it, which extends the evidence.
func TestTimestampSweep(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		ca := tsatest.NewCA(t, "Sweep")
		short := tsatest.NewAuthorityUnder(t, ca, ca.NewSigner(t, "Short TSA", tsatest.SignerOptions{NotAfter: time.Now().Add(24 * time.Hour)}))
		long := tsatest.NewAuthority(t, "Long", tsatest.SignerOptions{})
		e := &tsaEnv{docsEnv: newDocsEnv(t, shape, withAuthorities(
			tsaAuthority{Name: "short", URL: short.URL, Roots: ca.RootPEM()},
			tsaAuthority{Name: "long", URL: long.URL, Roots: long.CA.RootPEM()},
		))}
		e.enable(t, map[string]any{"authority": "short"})
		content := randomContent(t, 800)
		doc := e.Upload(t, e.user, e.tenantID, "s.bin", content)
		if st := e.waitDone(t, doc.FileID); st.Status != "stamped" || *st.Authority != "short" {
			t.Fatalf("first stamp %+v", st)
		}

		// A request whose job is gone: pending, untouched for long.
		ctx := context.Background()
		lostContent := randomContent(t, 100)
		lost := e.Upload(t, e.user, e.tenantID, "lost.bin", lostContent)
		e.waitDone(t, lost.FileID)
		tn, err := e.App.TenantSvc.Active(ctx, e.tenantID)
		if err != nil {
			t.Fatal(err)
		}
		lease, err := e.App.Tenants.Acquire(ctx, tenantdb.RefOf(tn))
		if err != nil {
			t.Fatal(err)
		}
		_, err = lease.DB().Exec(ctx, `UPDATE file_timestamps SET status = 'pending', updated_at = $2 WHERE file_id = $1`,
			lost.FileID, time.Now().Add(-3*time.Hour))
		lease.Release()
		if err != nil {
			t.Fatal(err)
		}
		// The short-lived authority's certificate ends within the renewal
		// period; the other one's does not.
		e.enable(t, map[string]any{"authority": []string{"long"}})
		rep, err := e.App.Timestamps.Sweep(ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Requeued != 1 || rep.Renewed != 1 {
			t.Fatalf("sweep %+v", rep)
		}
		if st := e.waitDone(t, lost.FileID); st.Status != "stamped" {
			t.Fatalf("lost request %+v", st)
		}
		opensslVerify(t, e.Get(t, e.file(lost.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "").Body, lostContent, long.CA.WriteRoot(t, t.TempDir()))
		st := e.waitDone(t, doc.FileID)
		if st.ChainLength != 2 || *st.Authority != "long" {
			t.Fatalf("after renewal %+v", st)
		}
		var v struct {
			Valid bool `json:"valid"`
			Chain []struct {
				Kind  string `json:"kind"`
				Valid bool   `json:"valid"`
			} `json:"chain"`
		}
		e.Do(t, apptest.Request{Method: http.MethodPost, Path: e.file(doc.FileID) + "/verify", Token: e.viewer.AccessToken}).Expect(t, 200, "").Data(t, &v)
		if !v.Valid || len(v.Chain) != 2 || v.Chain[1].Kind != "archive" || !v.Chain[1].Valid {
			t.Fatalf("verify %+v", v)
		}
		// The .tsr download is still the token over the file itself.
		res := e.Get(t, e.file(doc.FileID)+"/download", e.viewer.AccessToken).Expect(t, 200, "")
		opensslVerify(t, res.Body, content, ca.WriteRoot(t, t.TempDir()))
		// The evidence holds the chain, each link checkable with openssl.
		files := unzip(t, e.Get(t, e.file(doc.FileID)+"/evidence", e.viewer.AccessToken).Expect(t, 200, "").Body)
		dir := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command("openssl", "ts", "-verify", "-data", filepath.Join(dir, "1-file-timestamp.tsr"),
			"-in", filepath.Join(dir, "2-archive-timestamp.tsr"), "-CAfile", filepath.Join(dir, "chain.pem")).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("Verification: OK")) {
			t.Fatalf("openssl on the archive stamp: %v %s (evidence %v)", err, out, keys(files))
		}
		if !strings.Contains(string(files["README.txt"]), "2-archive-timestamp.tsr") {
			t.Fatalf("README %s", files["README.txt"])
		}
	})
}

// Ensure a bulk request of 1,000 files keeps to the authority's rate and
// ends with 1,000 verified stamps, each of which OpenSSL accepts too.
func TestTimestampBulkThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 stamps at a bounded rate take seconds")
	}
	t.Parallel()
	const files, rate = 1000, 100.0
	g := tsatest.NewAuthority(t, "Bulk", tsatest.SignerOptions{})
	e := &tsaEnv{docsEnv: newDocsEnv(t, config.Embedded, withAuthorities(tsaAuthority{Name: "bulk", URL: g.URL, Roots: g.CA.RootPEM()}),
		func(c *config.Config) { c.TSARate = rate; c.JobWorkers = 20 })}
	// Uploaded four at a time, as clients would.
	contents := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < files; i += 4 {
				c := fmt.Appendf(nil, "document %d %x", i, randomContent(t, 16))
				id := e.Upload(t, e.user, e.tenantID, fmt.Sprintf("d%04d.txt", i), c).FileID
				mu.Lock()
				contents[id] = c
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(contents) != files {
		t.Fatalf("%d files stored", len(contents))
	}
	e.enable(t, map[string]any{"authority": "bulk"})
	var r struct {
		Total   int     `json:"total_files"`
		Minutes float64 `json:"estimated_duration_minutes"`
	}
	e.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + e.tenantID + "/files/timestamp/bulk", Token: e.admin.AccessToken,
		Body: map[string]any{"filter": map[string]any{"not_timestamped": true}}}).Expect(t, 201, "").Data(t, &r)
	if r.Total != files || r.Minutes != 0.2 {
		t.Fatalf("bulk %+v", r)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var list struct {
			Pagination struct {
				Total int `json:"total"`
			} `json:"pagination"`
		}
		e.Get(t, e.docs()+"?per_page=1&timestamp_status=stamped", e.viewer.AccessToken).Expect(t, 200, "").Data(t, &list)
		if list.Pagination.Total == files {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d stamped", list.Pagination.Total, files)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// At 100 per second, any 101 consecutive requests leave a second
	// apart at least, and the whole run takes (n-1)/100 seconds. They are
	// timed where they arrive, after the network and the scheduler of a
	// loaded machine have delayed some more than others, so a window is
	// allowed a fifth of a second of that jitter and the whole run 3%: a
	// limiter that let requests through twice as fast, or in bursts, still
	// fails both.
	times := g.Times()
	if len(times) != files {
		t.Fatalf("%d requests for %d files", len(times), files)
	}
	for i := 0; i+int(rate) < len(times); i++ {
		if span := times[i+int(rate)].Sub(times[i]); span < 800*time.Millisecond {
			t.Fatalf("requests %d to %d within %s: over %v per second", i, i+int(rate), span, rate)
		}
	}
	least := time.Duration(float64(len(times)-1) / rate * 0.97 * float64(time.Second))
	if span := times[len(times)-1].Sub(times[0]); span < least {
		t.Fatalf("%d requests within %s: over %v per second", len(times), span, rate)
	}
	// Each stamp was verified before it was kept; OpenSSL checks each too,
	// four at a time.
	caFile := g.CA.WriteRoot(t, t.TempDir())
	ids := make(chan string)
	failures := make(chan error, files)
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				tsr := e.Get(t, e.file(id)+"/download", e.viewer.AccessToken)
				if tsr.Status != http.StatusOK {
					failures <- fmt.Errorf("file %s: download answered %d", id, tsr.Status)
				} else if err := tsatest.OpenSSLVerify(tsr.Body, contents[id], "", caFile); err != nil {
					failures <- fmt.Errorf("file %s: %w", id, err)
				}
			}
		})
	}
	for id := range contents {
		ids <- id
	}
	close(ids)
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
}
