package bench_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"mime/multipart"
	"net/http"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/quota"
)

// BenchmarkSmallUploadQuotas measures what quotas add to an upload: small
// uploads of distinct content, one after another, to an in-process server,
// for a tenant without limits (nothing is reserved) and for one with a
// storage and a documents limit it never reaches (each upload reads its
// limits and the tenant's totals, reserves its room in a transaction of its
// own, and consumes the reservation when it records the document). Small
// uploads show the fixed cost; for large ones streaming dominates.
func BenchmarkSmallUploadQuotas(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		e := apptest.StartShape(b, shape)
		u := e.SignUp(b, "Uploader")
		for _, limited := range []bool{false, true} {
			name := "quotas=none"
			if limited {
				name = "quotas=storage,documents"
			}
			b.Run(name, func(b *testing.B) {
				tenantID := e.CreateTenant(b, u, name)
				if limited {
					storage, documents := int64(1<<40), int64(1<<40)
					if _, err := e.App.Quotas.Set(context.Background(), tenantID, []quota.Override{
						{Kind: quota.Storage, Limit: &storage}, {Kind: quota.Documents, Limit: &documents},
					}); err != nil {
						b.Fatal(err)
					}
				}
				content := bytes.Repeat([]byte("q"), 16*kib)
				url := e.URL + "/api/tenants/" + tenantID + "/documents"
				var body bytes.Buffer
				for i := 0; b.Loop(); i++ {
					binary.BigEndian.PutUint64(content, uint64(i))
					body.Reset()
					w := multipart.NewWriter(&body)
					part, _ := w.CreateFormFile("file", "small.bin")
					_, _ = part.Write(content)
					_ = w.Close()
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body.Bytes()))
					req.Header.Set("Content-Type", w.FormDataContentType())
					req.Header.Set("Authorization", "Bearer "+u.AccessToken)
					res, err := e.Server.Client().Do(req)
					if err != nil {
						b.Fatal(err)
					}
					_ = res.Body.Close()
					if res.StatusCode != http.StatusCreated {
						b.Fatalf("upload: status %d", res.StatusCode)
					}
				}
			})
		}
	})
}
