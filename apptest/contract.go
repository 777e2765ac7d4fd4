package apptest

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	validatorerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
)

// OpenAPIReportEnv names a directory into which each test binary that calls
// Main writes, as it exits, how many responses it checked against the
// OpenAPI document and how many did not match. CI sums these files: a
// passing package's output is hidden by go test, and a count of zero would
// mean the check silently stopped running.
const OpenAPIReportEnv = "TENANTRY_TEST_OPENAPI_REPORT"

// OpenAPIPath is where tenantry serves its OpenAPI document.
const OpenAPIPath = "/api/docs/openapi.json"

// responseChecks is what every Env of one test binary shares: a validator
// per distinct document, built once however many tests start a server, and
// the running totals Main reports.
type responseChecks struct {
	mu         sync.Mutex
	validators map[[sha256.Size]byte]*contractBuild
	checked    atomic.Int64
	mismatches atomic.Int64
}

// contractBuild builds one document's validator at most once, outside the
// cache's lock, so that servers with other documents need not wait for it.
type contractBuild struct {
	once     sync.Once
	contract *contract
	err      error
}

// checks is the test binary's one set of validators and totals; parallel
// tests share it, each through its own Env.
var checks = &responseChecks{validators: map[[sha256.Size]byte]*contractBuild{}} //nolint:gochecknoglobals // per test binary by nature, see Main

// contract is a validator for one served document, with the operation ids
// that failure messages name.
type contract struct {
	validator  validator.Validator
	operations map[string]string // "METHOD /path/{template}" -> operation id
}

func (c *responseChecks) contractFor(doc []byte) (*contract, error) {
	key := sha256.Sum256(doc)
	c.mu.Lock()
	b, ok := c.validators[key]
	if !ok {
		b = &contractBuild{}
		c.validators[key] = b
	}
	c.mu.Unlock()
	b.once.Do(func() { b.contract, b.err = newContract(doc) })
	return b.contract, b.err
}

func newContract(doc []byte) (*contract, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse the OpenAPI document: %w", err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		return nil, fmt.Errorf("build a validator from the OpenAPI document: %v", errs)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &spec); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document's operations: %w", err)
	}
	ops := map[string]string{}
	for path, item := range spec.Paths {
		for method, op := range item {
			ops[strings.ToUpper(method)+" "+path] = op.OperationID
		}
	}
	return &contract{validator: v, operations: ops}, nil
}

// outsideContract reports whether path is served by something other than
// the API the document describes: the documentation itself (Swagger UI and
// the document in its forms) and the jobs dashboard with its login pages.
// Every other path must be in the document; one that is not fails the test.
func outsideContract(path string) bool {
	for _, prefix := range []string{"/api/docs", "/admin"} {
		if path == prefix || strings.HasPrefix(path, prefix+"/") {
			return true
		}
	}
	return false
}

// openAPIContract fetches the document this Env serves, once, and returns
// its validator.
func (e *Env) openAPIContract() (*contract, error) {
	e.contractOnce.Do(func() {
		res, err := e.Server.Client().Get(e.URL + OpenAPIPath)
		if err != nil {
			e.contractErr = fmt.Errorf("fetch the OpenAPI document: %w", err)
			return
		}
		defer res.Body.Close()
		doc, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if err != nil {
			e.contractErr = fmt.Errorf("fetch the OpenAPI document: %w", err)
			return
		}
		e.contract, e.contractErr = checks.contractFor(doc)
	})
	return e.contract, e.contractErr
}

// checkResponse fails the test when a response does not match what the
// served OpenAPI document promises for its operation and status. Benchmarks
// are not checked: the validation would be measured with the server.
func (e *Env) checkResponse(t testing.TB, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	if _, benchmark := t.(*testing.B); benchmark || outsideContract(req.URL.Path) {
		return
	}
	c, err := e.openAPIContract()
	if err != nil {
		t.Fatalf("OpenAPI response validation: %v", err)
	}
	copied := *res
	copied.Body = io.NopCloser(bytes.NewReader(body))
	valid, errs := c.validator.ValidateHttpResponse(req, &copied)
	checks.checked.Add(1)
	if valid || unroutedAnswer(errs, res.StatusCode, body) {
		return
	}
	checks.mismatches.Add(1)
	operation := "not in the document"
	var msg strings.Builder
	for _, ve := range errs {
		if id, ok := c.operations[req.Method+" "+ve.SpecPath]; ok {
			operation = id
		}
		fmt.Fprintf(&msg, "\n  %s: %s", ve.Message, ve.Reason)
		for _, f := range ve.SchemaValidationErrors {
			fmt.Fprintf(&msg, "\n    %s: %s", cmpOr(f.FieldPath, f.KeywordLocation), f.Reason)
		}
	}
	t.Errorf("response does not match the OpenAPI document: %s %s (operation %s) answered %d:%s\nbody: %s",
		req.Method, req.URL.Path, operation, res.StatusCode, msg.String(), truncate(body, 2048))
}

// unroutedAnswer reports whether a response is the one the contract gives
// a path or method no operation has: 404 NOT_FOUND or 405
// METHOD_NOT_ALLOWED, in the error envelope. A route the document forgets
// answers something else, so it still fails.
func unroutedAnswer(errs []*validatorerrors.ValidationError, status int, body []byte) bool {
	codes := map[int]string{http.StatusNotFound: "NOT_FOUND", http.StatusMethodNotAllowed: "METHOD_NOT_ALLOWED"}
	want, ok := codes[status]
	if !ok || len(errs) == 0 {
		return false
	}
	for _, e := range errs {
		if e.ValidationType != helpers.PathValidation || e.ValidationSubType != helpers.ValidationMissing {
			return false
		}
	}
	var env struct {
		Success *bool `json:"success"`
		Error   *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	return json.Unmarshal(body, &env) == nil && env.Success != nil && !*env.Success &&
		env.Error != nil && env.Error.Code == want && env.Error.Message != ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}

// Main runs a package's tests and, when OpenAPIReportEnv names a directory,
// writes the package's count of responses validated against the OpenAPI
// document there, then exits. Every package whose tests use apptest calls it
// from its TestMain:
//
//	func TestMain(m *testing.M) { apptest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if dir := os.Getenv(OpenAPIReportEnv); dir != "" {
		if err := writeReport(dir); err != nil {
			fmt.Fprintf(os.Stderr, "OpenAPI response validation report: %v\n", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// writeReport writes the totals as lines of "key value", one file per test
// binary run.
func writeReport(dir string) error {
	pkg := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok && info.Path != "" {
		pkg = strings.TrimSuffix(info.Path, ".test")
	}
	report := fmt.Sprintf("package %s\nresponses_validated %d\nmismatches %d\n", pkg, checks.checked.Load(), checks.mismatches.Load())
	name := strings.NewReplacer("/", "_", ".", "_").Replace(pkg) + "-" + strconv.Itoa(os.Getpid()) + ".txt"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), []byte(report), 0o644)
}
