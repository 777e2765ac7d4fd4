package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestDownload(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		body := content(100_000)
		doc := d.Upload(t, d.user, d.tenantID, "data.bin", body)
		path := d.docs() + "/" + doc.ID + "/download"
		get := func(h http.Header) *apptest.Response {
			return d.Do(t, apptest.Request{Method: "GET", Path: path, Token: d.viewer.AccessToken, Header: h})
		}

		res := get(nil)
		if res.Status != 200 || !bytes.Equal(res.Body, body) {
			t.Fatalf("full download: %d, %d bytes", res.Status, len(res.Body))
		}
		etag := `"` + doc.File.SHA256 + `"`
		for k, want := range map[string]string{
			"Content-Length":         "100000",
			"Content-Type":           "application/pdf",
			"ETag":                   etag,
			"Accept-Ranges":          "bytes",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if !strings.HasPrefix(res.Header.Get("Content-Disposition"), `attachment; filename="data.bin"`) {
			t.Errorf("Content-Disposition = %q", res.Header.Get("Content-Disposition"))
		}

		for _, tt := range []struct {
			header   string
			from, to int // inclusive
		}{
			{"bytes=0-0", 0, 0},
			{"bytes=1000-1999", 1000, 1999},
			{"bytes=99000-", 99000, 99999},
			{"bytes=-500", 99500, 99999},
			{"bytes=99990-200000", 99990, 99999},
		} {
			res := get(http.Header{"Range": {tt.header}})
			want := body[tt.from : tt.to+1]
			if res.Status != 206 || !bytes.Equal(res.Body, want) {
				t.Fatalf("%s: %d, %d bytes, want 206 and %d bytes", tt.header, res.Status, len(res.Body), len(want))
			}
			if cr := res.Header.Get("Content-Range"); cr != "bytes "+strconv.Itoa(tt.from)+"-"+strconv.Itoa(tt.to)+"/100000" {
				t.Errorf("%s: Content-Range = %q", tt.header, cr)
			}
			if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
				t.Errorf("%s: Content-Length = %q", tt.header, cl)
			}
		}
		for _, ignored := range []string{"bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=x-"} {
			if res := get(http.Header{"Range": {ignored}}); res.Status != 200 || len(res.Body) != len(body) {
				t.Errorf("%s: %d, want the whole content", ignored, res.Status)
			}
		}
		res = get(http.Header{"Range": {"bytes=100000-"}})
		if res.Status != 416 || res.Header.Get("Content-Range") != "bytes */100000" {
			t.Errorf("unsatisfiable range: %d %q", res.Status, res.Header.Get("Content-Range"))
		}
		if res := get(http.Header{"If-None-Match": {etag}}); res.Status != 304 || len(res.Body) != 0 {
			t.Errorf("If-None-Match: %d", res.Status)
		}
		if res := get(http.Header{"Range": {"bytes=0-9"}, "If-Range": {`"stale"`}}); res.Status != 200 {
			t.Errorf("If-Range with another tag: %d, want the whole content", res.Status)
		}
		d.Get(t, path, "").Expect(t, 401, "UNAUTHORIZED")
	})
}

func TestDownloadURL(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		body := content(5000)
		var doc apptest.Document
		d.UploadParts(t, d.user.AccessToken, d.tenantID,
			apptest.Part{Name: "file", Filename: "x", Body: body},
			apptest.Part{Name: "filename", Body: []byte(`Relevé "Q3".csv`)},
			apptest.Part{Name: "mime_type", Body: []byte("text/csv")},
		).Expect(t, 201, "").Data(t, &doc)
		path := d.docs() + "/" + doc.ID + "/download-url"

		var link struct {
			DownloadURL string `json:"download_url"`
			ExpiresIn   int    `json:"expires_in"`
			ExpiresAt   string `json:"expires_at"`
			Filename    string `json:"filename"`
			MimeType    string `json:"mime_type"`
			FileSize    int64  `json:"file_size"`
		}
		d.Get(t, path, d.viewer.AccessToken).Expect(t, 200, "").Data(t, &link)
		expiresAt, err := time.Parse(time.RFC3339, link.ExpiresAt)
		if err != nil || link.ExpiresIn != 3600 || link.FileSize != 5000 || link.MimeType != "text/csv" || link.Filename != `Relevé "Q3".csv` ||
			time.Until(expiresAt) < 59*time.Minute || !strings.HasSuffix(link.ExpiresAt, "Z") {
			t.Fatalf("link = %+v", link)
		}
		d.Get(t, path+"?expires_in=7200", d.viewer.AccessToken).Expect(t, 200, "").Data(t, &link)
		if link.ExpiresIn != 7200 {
			t.Fatalf("expires_in = %d", link.ExpiresIn)
		}
		for _, bad := range []string{"30", "59", "86401", "100000", "soon"} {
			d.Get(t, path+"?expires_in="+bad, d.viewer.AccessToken).Expect(t, 400, "BAD_REQUEST")
		}
		d.Get(t, path+"?expires_in=60", d.viewer.AccessToken).Expect(t, 200, "")

		if shape == config.Production && d.App.Config.Bucket() != "" {
			u, _ := url.Parse(link.DownloadURL)
			if public, _ := url.Parse(d.App.Config.S3PublicURL); u.Host != public.Host || u.Query().Get("X-Amz-Signature") == "" {
				t.Fatalf("presigned URL %s is not signed for the public host", link.DownloadURL)
			}
		}

		// Fetched with no credentials at all, the link serves the exact
		// bytes with the document's name and type.
		res := fetch(t, link.DownloadURL)
		if res.StatusCode != 200 || !bytes.Equal(readAll(t, res), body) {
			t.Fatalf("link fetch: %d", res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type = %q", ct)
		}
		if cd := res.Header.Get("Content-Disposition"); !strings.Contains(cd, "filename*=UTF-8''Relev%C3%A9%20%22Q3%22.csv") {
			t.Errorf("Content-Disposition = %q", cd)
		}

		// A tampered link is refused.
		if res := fetch(t, tamper(link.DownloadURL)); res.StatusCode != 403 {
			t.Fatalf("tampered link: %d, want 403", res.StatusCode)
		}

		// So is an expired one.
		ctx := tenantry.NewContextWithPrincipal(context.Background(), tenantry.Principal{UserID: d.viewer.ID})
		short, err := d.App.Documents.DownloadLink(ctx, d.tenantID, doc.ID, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		shortURL := short.URL
		if shortURL == "" {
			shortURL = d.URL + short.Path
		}
		if res := fetch(t, shortURL); res.StatusCode != 200 {
			t.Fatalf("fresh short link: %d", res.StatusCode)
		}
		time.Sleep(2100 * time.Millisecond)
		if res := fetch(t, shortURL); res.StatusCode != 403 {
			t.Fatalf("expired link: %d, want 403", res.StatusCode)
		}
	})
}

// tamper changes one character of the link's signature.
func tamper(link string) string {
	u, _ := url.Parse(link)
	q := u.Query()
	for _, k := range []string{"signature", "X-Amz-Signature"} {
		if sig := q.Get(k); sig != "" {
			flipped := []byte(sig)
			if flipped[0] == 'a' {
				flipped[0] = 'b'
			} else {
				flipped[0] = 'a'
			}
			q.Set(k, string(flipped))
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func fetch(t *testing.T, link string) *http.Response {
	t.Helper()
	res, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignedLinkOfADeletedDocumentOrTenant(t *testing.T) {
	t.Parallel()
	d := newDocsEnv(t, config.Embedded)
	doc := d.Upload(t, d.user, d.tenantID, "gone.txt", []byte("gone"))
	var link struct {
		DownloadURL string `json:"download_url"`
	}
	d.Get(t, d.docs()+"/"+doc.ID+"/download-url", d.user.AccessToken).Expect(t, 200, "").Data(t, &link)
	d.Do(t, del(d.docs()+"/"+doc.ID, d.user.AccessToken)).Expect(t, 200, "")
	if res := fetch(t, link.DownloadURL); res.StatusCode != 404 {
		t.Fatalf("link of a deleted document: %d, want 404", res.StatusCode)
	}
	doc = d.Upload(t, d.user, d.tenantID, "kept.txt", []byte("kept"))
	d.Get(t, d.docs()+"/"+doc.ID+"/download-url", d.user.AccessToken).Expect(t, 200, "").Data(t, &link)
	d.Do(t, del("/api/tenants/"+d.tenantID, d.admin.AccessToken)).Expect(t, 200, "")
	if res := fetch(t, link.DownloadURL); res.StatusCode != 404 {
		t.Fatalf("link into a deactivated tenant: %d, want 404", res.StatusCode)
	}
}
