package bench_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PocketBase, the single-binary backend users most often weigh tenantry
// against, runs beside tenantry in the benchmarks that compare the two. It
// is not a dependency of tenantry: the benchmark runs the binary built from
// its examples/base command, found at pocketBaseEnv or as `base` on PATH.
const (
	pocketBaseEnv = "TENANTRY_BENCH_POCKETBASE"
	// pocketBaseInstall is how the documented figures' binary was built.
	pocketBaseInstall = "GOFLAGS=-mod=mod go install github.com/pocketbase/pocketbase/examples/base@v0.30.0 " +
		"(from a directory outside this repository)"
)

// pocketBaseBinary returns the PocketBase binary to run, or skips the
// benchmark saying how to provide one.
func pocketBaseBinary(b *testing.B) string {
	b.Helper()
	if path := os.Getenv(pocketBaseEnv); path != "" {
		if _, err := os.Stat(path); err != nil {
			b.Fatalf("%s=%s: %v", pocketBaseEnv, path, err)
		}
		return path
	}
	path, err := exec.LookPath("base")
	if err != nil {
		b.Skipf("PocketBase is not installed, so it is not measured: build it with %s and put `base` on PATH, or set %s to its path",
			pocketBaseInstall, pocketBaseEnv)
	}
	return path
}

// pocketBase is a running PocketBase with what the benchmarks use: a users
// auth collection (PocketBase creates one) with one user signed in, and an
// "uploads" collection whose file field takes up to 200 MiB, which signed-in
// users may add records to.
type pocketBase struct {
	*child
	email, password string
	token           string
}

// pocketBase's accounts' password; PocketBase hashes with bcrypt at its
// default cost.
const pocketBasePassword = "Correct-horse-battery-9"

// startPocketBase creates a superuser in a fresh data directory, serves it
// on a free loopback port (`base serve --http 127.0.0.1:PORT --dir DIR`),
// and sets it up through PocketBase's own HTTP API. It stops the server
// with SIGTERM when the benchmark ends. Nothing of the benchmark's
// environment is passed on; the log goes to a file.
func startPocketBase(b *testing.B, bin string) *pocketBase {
	b.Helper()
	base := b.TempDir()
	for attempt := 1; ; attempt++ {
		dir := filepath.Join(base, strconv.Itoa(attempt))
		pb, err := launchPocketBase(b, bin, dir)
		if errors.Is(err, errPortTaken) && attempt < portAttempts {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		pb.setUp(b)
		return pb
	}
}

const (
	pocketBaseAdmin         = "admin@example.com"
	pocketBaseAdminPassword = "Admin-horse-battery-9"
)

func launchPocketBase(b *testing.B, bin, dir string) (*pocketBase, error) {
	b.Helper()
	dataDir := filepath.Join(dir, "pb_data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "superuser", "upsert", pocketBaseAdmin, pocketBaseAdminPassword, "--dir", dataDir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("base superuser upsert: %v\n%s", err, out)
	}
	c := &child{url: "http://127.0.0.1:" + freePort(b), dataDir: dataDir, logPath: filepath.Join(dir, "pocketbase.log")}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, "serve", "--http", strings.TrimPrefix(c.url, "http://"), "--dir", dataDir)
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start PocketBase: %w", err)
	}
	c.pid = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c.stop = sync.OnceFunc(func() { stopChild(b, cmd, exited, c) })
	b.Cleanup(c.stop)

	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	for !healthy(probe, c.url+"/api/health") {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			if strings.Contains(c.log(), "address already in use") {
				return nil, errPortTaken
			}
			return nil, fmt.Errorf("PocketBase exited before answering /api/health (%v); its log:\n%s", err, c.log())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(start) > healthTimeout {
			return nil, fmt.Errorf("PocketBase did not answer /api/health within %s; its log:\n%s", healthTimeout, c.log())
		}
	}
	c.client = &http.Client{Timeout: time.Minute}
	return &pocketBase{child: c, email: "user." + randomHex(6) + "@example.com", password: pocketBasePassword}, nil
}

// setUp creates the uploads collection as the superuser, then the user,
// and signs the user in.
func (pb *pocketBase) setUp(b *testing.B) {
	b.Helper()
	var admin struct {
		Token string `json:"token"`
	}
	pb.send(b, http.MethodPost, "/api/collections/_superusers/auth-with-password", "",
		map[string]string{"identity": pocketBaseAdmin, "password": pocketBaseAdminPassword}, &admin)
	signedIn := `@request.auth.id != ""`
	pb.send(b, http.MethodPost, "/api/collections", admin.Token, map[string]any{
		"name": "uploads", "type": "base", "createRule": signedIn, "listRule": signedIn, "viewRule": signedIn,
		"fields": []map[string]any{{"name": "file", "type": "file", "maxSelect": 1, "maxSize": 200 * mib}},
	}, nil)
	pb.send(b, http.MethodPost, "/api/collections/users/records", "",
		map[string]string{"email": pb.email, "password": pb.password, "passwordConfirm": pb.password}, nil)
	token, err := pb.signIn(pb.client)
	if err != nil {
		b.Fatal(err)
	}
	pb.token = token
}

// signIn authenticates the user with their password over client and
// returns the token.
func (pb *pocketBase) signIn(client *http.Client) (string, error) {
	var auth struct {
		Token string `json:"token"`
	}
	err := pb.request(client, http.MethodPost, "/api/collections/users/auth-with-password", "",
		map[string]string{"identity": pb.email, "password": pb.password}, &auth)
	return auth.Token, err
}

// send is request on the benchmark's own client, failing the benchmark on
// an error.
func (pb *pocketBase) send(b *testing.B, method, path, token string, body, out any) {
	b.Helper()
	if err := pb.request(pb.client, method, path, token, body, out); err != nil {
		b.Fatal(err)
	}
}

// request sends one JSON request to PocketBase, fails unless it answers
// 200, and decodes the answer into out when out is not nil.
func (pb *pocketBase) request(client *http.Client, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, pb.url+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d, %v\n%s", method, path, res.StatusCode, err, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w\n%s", method, path, err, data)
		}
	}
	return nil
}

// upload streams one generated file of size bytes into a new record of
// the uploads collection, as uploadRequest does for tenantry, and checks
// that PocketBase recorded it.
func (pb *pocketBase) upload(b *testing.B, client *http.Client, block []byte, size int64) {
	b.Helper()
	var envelope bytes.Buffer
	mw := multipart.NewWriter(&envelope)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="upload-`+strconv.FormatInt(size, 10)+`.bin"`)
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		b.Fatal(err)
	}
	head := bytes.Clone(envelope.Bytes())
	envelope.Reset()
	if err := mw.Close(); err != nil {
		b.Fatal(err)
	}
	foot := bytes.Clone(envelope.Bytes())
	body := io.MultiReader(bytes.NewReader(head), newContent(block, size), bytes.NewReader(foot))
	req, err := http.NewRequest(http.MethodPost, pb.url+"/api/collections/uploads/records", body)
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = int64(len(head)) + size + int64(len(foot))
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", pb.token)
	res, err := client.Do(req)
	if err != nil {
		b.Fatalf("upload of %d bytes to PocketBase: %v", size, err)
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	var record struct {
		File string `json:"file"`
	}
	if err != nil || res.StatusCode != http.StatusOK || json.Unmarshal(data, &record) != nil || record.File == "" {
		b.Fatalf("upload of %d bytes to PocketBase: status %d, %v\n%s", size, res.StatusCode, err, data)
	}
}
