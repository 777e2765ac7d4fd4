package bench_test

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tenantry/tenantry/config"
)

// BenchmarkSealedBlobs compares documents with blob encryption off and on,
// in a `tenantry serve` child storing blobs on local disk: b.N uploads of
// 100 MiB (median MB/s of content), then b.N whole downloads of the last
// one (median MB/s) and b.N ranged downloads of 1 MiB from its middle
// (median latency), each over loopback from the first byte sent to the last
// byte read. With encryption on, an upload is also sealed in 64 KiB
// packages on its way to disk, a whole download opened package by package,
// and a range reads the object's header and the 17 packages it covers.
func BenchmarkSealedBlobs(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		for _, mode := range []string{"off", "on"} {
			b.Run("encryption="+mode, func(b *testing.B) {
				extra := []string{"TENANTRY_MAX_UPLOAD_MB=200", "TENANTRY_BLOB_ENCRYPTION=" + mode}
				if shape == config.Production {
					extra = append(extra, "TENANTRY_MASTER_KEY="+randomHex(32))
				}
				c := startChild(b, bin, shape, extra...)
				a := c.signUp(b, "Uploader")
				t := c.createTenant(b, a, "Sealed")
				client := uploadClient()
				block := newBlock()
				upload(b, c, client, a.token, t.ID, block, mib)

				uploads := make([]float64, 0, b.N)
				var docID string
				for range b.N {
					id, d := uploadDocument(b, c, client, a.token, t.ID, block, throughputUpload)
					uploads = append(uploads, throughputUpload/mb/d.Seconds())
					docID = id
				}
				path := c.url + "/api/tenants/" + t.ID + "/documents/" + docID + "/download"
				downloads := make([]float64, 0, b.N)
				ranges := make([]time.Duration, 0, b.N)
				for range b.N {
					d := download(b, client, a.token, path, "", throughputUpload)
					downloads = append(downloads, throughputUpload/mb/d.Seconds())
					from := int64(throughputUpload/2 + 12345)
					ranges = append(ranges, download(b, client, a.token, path,
						"bytes="+strconv.FormatInt(from, 10)+"-"+strconv.FormatInt(from+mib-1, 10), mib))
				}
				slices.Sort(uploads)
				slices.Sort(downloads)
				slices.Sort(ranges)
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(uploads[(len(uploads)-1)/2], "upload-MB/s")
				b.ReportMetric(downloads[(len(downloads)-1)/2], "download-MB/s")
				b.ReportMetric(float64(ranges[(len(ranges)-1)/2].Microseconds())/1000, "range-1MiB-ms")
			})
		}
	})
}

// uploadDocument is upload, also returning the new document's id.
func uploadDocument(b *testing.B, c *child, client *http.Client, token, tenantID string, block []byte, size int64) (string, time.Duration) {
	b.Helper()
	req := uploadRequest(b, c, token, tenantID, block, size)
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	elapsed := time.Since(start)
	if err != nil || res.StatusCode != http.StatusCreated {
		b.Fatalf("upload: %d, %v", res.StatusCode, err)
	}
	var doc struct {
		ID string `json:"id"`
	}
	decodeData(b, data, &doc)
	return doc.ID, elapsed
}

// download reads the document at path, or the byte range rng of it, and
// returns how long it took; the body must be want bytes long.
func download(b *testing.B, client *http.Client, token, path, rng string, want int64) time.Duration {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	elapsed := time.Since(start)
	if err != nil || n != want || (res.StatusCode != http.StatusOK && res.StatusCode != http.StatusPartialContent) {
		b.Fatalf("GET %s (%s): %d, %d bytes, %v", path, rng, res.StatusCode, n, err)
	}
	return elapsed
}
