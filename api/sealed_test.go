package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/tenantry/tenantry/app"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/blob/blobtest"
	"github.com/tenantry/tenantry/config"
)

// With blob encryption on, documents behave exactly as without it, while
// the blob store (local disk, or S3 when configured) holds only ciphertext.
func TestDocumentsSealedAtRest(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape, func(c *config.Config) { c.BlobEncryption = "on" })
		body := content(300_000)
		doc := d.Upload(t, d.user, d.tenantID, "drawing.bin", body)
		again := d.Upload(t, d.admin, d.tenantID, "copy.bin", body)
		if again.File.ID != doc.File.ID {
			t.Fatalf("the same content uploaded twice made files %s and %s: deduplication is lost", doc.File.ID, again.File.ID)
		}

		path := d.docs() + "/" + doc.ID + "/download"
		res := d.Get(t, path, d.viewer.AccessToken)
		if res.Status != 200 || !bytes.Equal(res.Body, body) {
			t.Fatalf("download: %d, %d bytes", res.Status, len(res.Body))
		}
		for _, r := range [][2]int{{0, 0}, {65535, 65536}, {70000, 200000}, {299_990, 299_999}} {
			res := d.Do(t, apptest.Request{Method: "GET", Path: path, Token: d.viewer.AccessToken,
				Header: http.Header{"Range": {"bytes=" + strconv.Itoa(r[0]) + "-" + strconv.Itoa(r[1])}}})
			if res.Status != http.StatusPartialContent || !bytes.Equal(res.Body, body[r[0]:r[1]+1]) {
				t.Fatalf("range %v: %d, %d bytes", r, res.Status, len(res.Body))
			}
		}

		raw, err := app.OpenBlobs(context.Background(), d.App.Config)
		if err != nil {
			t.Fatal(err)
		}
		stored := blobtest.Read(t, raw, doc.File.S3Path, 0, -1)
		if len(stored) <= len(body) || bytes.Contains(stored, body[1000:1100]) {
			t.Fatalf("the blob store holds %d bytes for %d of content, or the content in clear", len(stored), len(body))
		}

		// The link is tenantry's own, never a presigned URL to ciphertext.
		var link struct {
			DownloadURL string `json:"download_url"`
		}
		d.Get(t, d.docs()+"/"+doc.ID+"/download-url", d.viewer.AccessToken).Expect(t, 200, "").Data(t, &link)
		if u, err := url.Parse(link.DownloadURL); err != nil || u.Query().Get("X-Amz-Signature") != "" {
			t.Fatalf("download link %s is presigned by the object store", link.DownloadURL)
		}
		if res := fetch(t, link.DownloadURL); res.StatusCode != 200 || !bytes.Equal(readAll(t, res), body) {
			t.Fatalf("link fetch: %d", res.StatusCode)
		}

		var storage struct {
			PhysicalBytes int64 `json:"physical_bytes"`
		}
		d.Get(t, "/api/tenants/"+d.tenantID+"/storage", d.admin.AccessToken).Expect(t, 200, "").Data(t, &storage)
		if storage.PhysicalBytes != int64(len(body)) {
			t.Errorf("physical_bytes = %d, want the content's %d", storage.PhysicalBytes, len(body))
		}
	})
}
