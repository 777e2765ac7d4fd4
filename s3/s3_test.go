package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/blob/blobtest"
	"github.com/tenantry/tenantry/s3"
	"github.com/tenantry/tenantry/s3/s3test"
)

// mustOpenStore opens a store on a fresh bucket, after edit adjusts its
// configuration.
func mustOpenStore(t *testing.T, edit func(*s3.Config)) (*s3.BlobStore, s3.Config) {
	t.Helper()
	cfg := s3test.NewBucket(t)
	if edit != nil {
		edit(&cfg)
	}
	s, err := s3.NewBlobStore(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewBlobStore: %v", err)
	}
	return s, cfg
}

func TestBlobStore(t *testing.T) {
	t.Parallel()
	s3test.Require(t)
	blobtest.Exercise(t, func(t *testing.T) blob.Store {
		s, _ := mustOpenStore(t, nil)
		return s
	})
}

// Ensure bodies around part boundaries take the right path (one PutObject or
// a multipart upload) and come back intact, with no upload left open.
func TestPartBoundaries(t *testing.T) {
	t.Parallel()
	s, cfg := mustOpenStore(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize })
	const part = s3.MinPartSize
	for _, size := range []int64{0, 1, part - 1, part, part + 1, 2 * part, 2*part + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			const prefix = "p/"
			want := sha256.New()
			tmp, n, err := s.PutTemp(t.Context(), prefix, io.TeeReader(pattern(size), want))
			if err != nil {
				t.Fatalf("PutTemp: %v", err)
			}
			if n != size {
				t.Fatalf("PutTemp size = %d, want %d", n, size)
			}
			key := fmt.Sprintf("%sfiles/%x", prefix, want.Sum(nil))
			if err := s.Promote(t.Context(), tmp, key); err != nil {
				t.Fatalf("Promote: %v", err)
			}
			rc, err := s.Open(t.Context(), key, 0, -1)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer rc.Close()
			got := sha256.New()
			if n, err := io.Copy(got, rc); err != nil || n != size {
				t.Fatalf("read back %d bytes, %v; want %d", n, err, size)
			}
			if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
				t.Errorf("read back different bytes")
			}
		})
	}
	t.Cleanup(func() { checkNoUploads(t, cfg.Bucket) })
}

// pattern streams n bytes that differ from one part to the next.
func pattern(n int64) io.Reader {
	return io.LimitReader(&counter{}, n)
}

type counter struct{ i uint32 }

func (c *counter) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c.i>>8) ^ byte(c.i)
		c.i++
	}
	return len(p), nil
}

func checkNoUploads(t *testing.T, bucket string) {
	t.Helper()
	out, err := s3test.Client(t).ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range out.Uploads {
		t.Errorf("multipart upload left open: %s (%s)", *u.Key, *u.UploadId)
	}
}

// Ensure an interrupted multipart upload is aborted, so that its parts do not
// linger in the bucket, invisible to List.
func TestInterruptedUploadAborted(t *testing.T) {
	t.Parallel()
	s, cfg := mustOpenStore(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize })
	ctx, cancel := context.WithCancel(t.Context())
	r := io.MultiReader(pattern(3*s3.MinPartSize), readerFunc(func([]byte) (int, error) {
		cancel()
		return 0, nil
	}), pattern(s3.MinPartSize))
	if _, _, err := s.PutTemp(ctx, "p/", r); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutTemp error = %v, want context.Canceled", err)
	}
	checkNoUploads(t, cfg.Bucket)
	if got := blobtest.Keys(t, s, ""); len(got) != 0 {
		t.Errorf("objects left: %v", got)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Ensure Promote copies objects larger than CopyObject allows in parts.
func TestPromoteMultipartCopy(t *testing.T) {
	t.Parallel()
	s, _ := mustOpenStore(t, nil)
	s.SetCopyLimits(s3.MinPartSize, s3.MinPartSize)
	const size = 2*s3.MinPartSize + 12345
	data, err := io.ReadAll(pattern(size))
	if err != nil {
		t.Fatal(err)
	}
	key := blobtest.ContentKey("p/", data)
	blobtest.Store(t, s, "p/", key, data)
	if got := blobtest.Read(t, s, key, 0, -1); !bytes.Equal(got, data) {
		t.Errorf("after a multipart copy, read %d bytes differing from the %d written", len(got), len(data))
	}
	if got := blobtest.Keys(t, s, "p/"); len(got) != 1 {
		t.Errorf("List = %v, want only %s", got, key)
	}
}

func storePDF(t *testing.T, s *s3.BlobStore) (key string, data []byte) {
	t.Helper()
	data = []byte("%PDF-1.7 presigned")
	key = blobtest.ContentKey("tenants/tenant_acme_1a2b3c4d/", data)
	blobtest.Store(t, s, "tenants/tenant_acme_1a2b3c4d/", key, data)
	return key, data
}

// Ensure a presigned URL serves the object without credentials, with the
// requested headers.
func TestPresignGet(t *testing.T) {
	t.Parallel()
	s, cfg := mustOpenStore(t, nil)
	key, data := storePDF(t, s)
	const disposition = `inline; filename="report.pdf"`
	u, err := s.PresignGet(t.Context(), key, time.Minute, disposition, "application/pdf")
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	if strings.Contains(u, cfg.SecretAccessKey) {
		t.Errorf("presigned URL contains the secret key")
	}
	body, resp := blobtest.Fetch(t, u)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET presigned URL: %d %q, want 200 %q", resp.StatusCode, body, data)
	}
	if got := resp.Header.Get("Content-Disposition"); got != disposition {
		t.Errorf("Content-Disposition = %q, want %q", got, disposition)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/pdf" {
		t.Errorf("Content-Type = %q, want application/pdf", got)
	}
}

// Ensure a presigned URL whose signature was altered is refused.
func TestPresignTampered(t *testing.T) {
	t.Parallel()
	s, _ := mustOpenStore(t, nil)
	key, _ := storePDF(t, s)
	u, err := s.PresignGet(t.Context(), key, time.Minute, "attachment", "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	sig := q.Get("X-Amz-Signature")
	if sig == "" {
		t.Fatalf("no X-Amz-Signature in %s", u)
	}
	flipped := "0"
	if sig[0] == '0' {
		flipped = "1"
	}
	q.Set("X-Amz-Signature", flipped+sig[1:])
	parsed.RawQuery = q.Encode()
	if body, resp := blobtest.Fetch(t, parsed.String()); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with a tampered signature: %d %q, want 403", resp.StatusCode, body)
	}

	// Changing what was signed is refused just the same.
	q = mustQuery(t, u)
	q.Set("response-content-type", "text/html")
	parsed.RawQuery = q.Encode()
	if body, resp := blobtest.Fetch(t, parsed.String()); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET with a tampered Content-Type: %d %q, want 403", resp.StatusCode, body)
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Query()
}

// Ensure a presigned URL stops working when its validity ends.
func TestPresignExpired(t *testing.T) {
	t.Parallel()
	s, _ := mustOpenStore(t, nil)
	key, _ := storePDF(t, s)
	u, err := s.PresignGet(t.Context(), key, time.Second, "attachment", "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if body, resp := blobtest.Fetch(t, u); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET an expired URL: %d %q, want 403", resp.StatusCode, body)
	}
}

// Ensure URLs are signed for the public host when it differs from the one the
// service uses, and that rewriting the host of a signed URL would not do.
func TestPresignPublicURL(t *testing.T) {
	t.Parallel()
	s3test.Require(t)
	endpoint, err := url.Parse(os.Getenv(s3test.EndpointEnv))
	if err != nil {
		t.Fatal(err)
	}
	if endpoint.Hostname() != "127.0.0.1" {
		t.Skipf("needs the test server on 127.0.0.1 to reach it as localhost too, not %s", endpoint.Host)
	}
	public := "http://localhost:" + endpoint.Port()
	s, cfg := mustOpenStore(t, func(c *s3.Config) { c.PublicURL = public })
	key, data := storePDF(t, s)
	u, err := s.PresignGet(t.Context(), key, time.Minute, "attachment", "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Host != "localhost:"+endpoint.Port() {
		t.Errorf("presigned URL host = %s, want the public localhost:%s", parsed.Host, endpoint.Port())
	}
	if body, resp := blobtest.Fetch(t, u); resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Errorf("GET presigned public URL: %d %q, want 200 %q", resp.StatusCode, body, data)
	}

	// A URL signed for the internal host and rewritten to the public one
	// fails: this is why the store signs with a client of its own.
	cfg.PublicURL = ""
	internal, err := s3.NewBlobStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, err = internal.PresignGet(t.Context(), key, time.Minute, "attachment", "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	rewritten := strings.Replace(u, endpoint.Host, "localhost:"+endpoint.Port(), 1)
	if body, resp := blobtest.Fetch(t, rewritten); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET a URL whose host was rewritten: %d %q, want 403", resp.StatusCode, body)
	}
}

func TestPresignTTL(t *testing.T) {
	t.Parallel()
	s, _ := mustOpenStore(t, nil)
	for _, ttl := range []time.Duration{0, -time.Minute, s3.MaxPresignTTL + time.Second} {
		if _, err := s.PresignGet(t.Context(), "p/a", ttl, "", ""); err == nil {
			t.Errorf("PresignGet with validity %v succeeded", ttl)
		}
	}
}

// Ensure failures caused by credentials or configuration are errors, not
// "not found", and never show the secret.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	const secret = "wrong-secret-0123456789abcdef"
	s, _ := mustOpenStore(t, func(c *s3.Config) { c.SecretAccessKey = secret })
	_, statErr := s.Stat(t.Context(), "p/a")
	pingErr := s.Ping(t.Context())
	_, _, putErr := s.PutTemp(t.Context(), "p/", strings.NewReader("x"))
	for name, err := range map[string]error{"Stat": statErr, "Ping": pingErr, "PutTemp": putErr} {
		if err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Errorf("%s with a wrong secret: error = %v, want a failure other than not found", name, err)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s error shows the secret: %v", name, err)
		}
	}
}

func TestMissingBucket(t *testing.T) {
	t.Parallel()
	_, cfg := mustOpenStore(t, nil)
	cfg.Bucket += "-missing"
	s, err := s3.NewBlobStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping on a missing bucket succeeded")
	}
}

func TestNewBlobStoreRefuses(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value"
	good := s3.Config{Endpoint: "http://127.0.0.1:1", Bucket: "b", AccessKeyID: "id", SecretAccessKey: secret}
	tests := map[string]func(*s3.Config){
		"no bucket":          func(c *s3.Config) { c.Bucket = "" },
		"small part":         func(c *s3.Config) { c.PartSize = s3.MinPartSize - 1 },
		"huge part":          func(c *s3.Config) { c.PartSize = s3.MaxPartSize + 1 },
		"secret without id":  func(c *s3.Config) { c.AccessKeyID = "" },
		"id without secret":  func(c *s3.Config) { c.SecretAccessKey = "" },
		"endpoint not a URL": func(c *s3.Config) { c.Endpoint = "127.0.0.1:7070" },
		"bad public URL":     func(c *s3.Config) { c.PublicURL = "ftp://u:p@host/" },
	}
	for name, edit := range tests {
		cfg := good
		edit(&cfg)
		if _, err := s3.NewBlobStore(t.Context(), cfg); err == nil {
			t.Errorf("%s: NewBlobStore succeeded", name)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
	if _, err := s3.NewBlobStore(t.Context(), good); err != nil {
		t.Errorf("NewBlobStore(%v): %v", good, err)
	}
}

// Ensure a configuration can be printed and logged without its secret.
func TestConfigRedacted(t *testing.T) {
	t.Parallel()
	cfg := s3.Config{Endpoint: "http://user:pw@s3.example.com", Bucket: "b", AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "s3cr3t-value"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("blob store", "s3", cfg)
	for _, out := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), logged.String()} {
		if strings.Contains(out, "s3cr3t-value") || strings.Contains(out, ":pw@") {
			t.Errorf("configuration printed with a secret: %s", out)
		}
		if !strings.Contains(out, "AKIAEXAMPLE") {
			t.Errorf("configuration printed without its access key id: %s", out)
		}
	}
}

// Ensure ranges are honoured even by a server that ignores Range headers and
// sends the whole object, as HTTP allows.
func TestServerIgnoringRange(t *testing.T) {
	t.Parallel()
	const body = "0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/bucket/p/a") {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		if r.Method == http.MethodGet {
			fmt.Fprint(w, body)
		}
	}))
	t.Cleanup(srv.Close)
	s, err := s3.NewBlobStore(t.Context(), s3.Config{Endpoint: srv.URL, Bucket: "bucket", AccessKeyID: "id", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		offset, length int64
		want           string
	}{
		{0, -1, body}, {0, 2, "01"}, {3, 4, "3456"}, {5, -1, "56789"}, {8, 5, "89"}, {12, -1, ""}, {4, 0, ""},
	} {
		if got := blobtest.Read(t, s, "p/a", tt.offset, tt.length); string(got) != tt.want {
			t.Errorf("Open(%d, %d) read %q, want %q", tt.offset, tt.length, got, tt.want)
		}
	}
	if _, err := s.Open(t.Context(), "p/b", 2, 3); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open(missing) error = %v, want ErrNotFound", err)
	}
}

// Ensure PutTemp holds one part in memory whatever the size of the body. Not
// parallel, so that no other test's allocations are counted.
func TestPutTempMemoryBounded(t *testing.T) {
	s, _ := mustOpenStore(t, func(c *s3.Config) { c.PartSize = s3.MinPartSize })
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, n, err := s.PutTemp(t.Context(), "p/", pattern(size))
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("PutTemp = %d, %v; want %d bytes", n, err, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*s3.MinPartSize {
		t.Errorf("PutTemp of %d MiB in %d MiB parts allocated %d MiB", size>>20, s3.MinPartSize>>20, alloc>>20)
	}
}
