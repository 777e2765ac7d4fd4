package bench_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/timestamp/tsatest"
)

// BenchmarkStampEndToEnd measures how many files per second get a verified
// time-stamp, end to end: b.N files (at most 1,000, one bulk request) are
// stored first, outside the timer; the timer runs from the bulk request
// until the last file reads stamped, through the job queue, the request to
// the local authority, the verification of its answer and the storing of
// the token. The authority is either OpenSSL's (one openssl ts -reply
// process per request, serialized) or one built with digitorus/timestamp,
// in process. No rate limit.
func BenchmarkStampEndToEnd(b *testing.B) {
	eachShape(b, func(b *testing.B, shape config.Shape) {
		for _, kind := range []string{"go", "openssl"} {
			b.Run("authority="+kind, func(b *testing.B) {
				if b.N > 1000 {
					b.Fatal("at most 1000 files: use -benchtime Nx")
				}
				var url, roots string
				if kind == "go" {
					a := tsatest.NewAuthority(b, "Go", tsatest.SignerOptions{})
					url, roots = a.URL, a.CA.RootPEM()
				} else {
					a := tsatest.NewOpenSSL(b, "OpenSSL")
					url, roots = a.URL, a.CA.ChainPEM()
				}
				list, _ := json.Marshal([]map[string]string{{"name": kind, "url": url, "roots_pem": roots}})
				cfg := apptest.Config(b, shape)
				cfg.TSAAuthorities, cfg.TSARate = string(list), 0
				env := apptest.Start(b, cfg)
				admin := env.SignUp(b, "Admin")
				tenantID := env.CreateTenant(b, admin, "Stamps")
				for i := range b.N {
					env.Upload(b, admin, tenantID, fmt.Sprintf("f%d.txt", i), fmt.Appendf(nil, "file %d %d", i, time.Now().UnixNano()))
				}
				env.Do(b, apptest.Request{Method: http.MethodPut, Path: "/api/tenants/" + tenantID + "/timestamping", Token: admin.AccessToken,
					Body: map[string]any{"enabled": true, "authority": kind}}).Expect(b, 200, "")
				b.ResetTimer()
				start := time.Now()
				env.Do(b, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + tenantID + "/files/timestamp/bulk", Token: admin.AccessToken,
					Body: map[string]any{"filter": map[string]any{"not_timestamped": true}}}).Expect(b, 201, "")
				for {
					var l struct {
						Pagination struct {
							Total int `json:"total"`
						} `json:"pagination"`
					}
					env.Get(b, "/api/tenants/"+tenantID+"/documents?per_page=1&timestamp_status=stamped", admin.AccessToken).Expect(b, 200, "").Data(b, &l)
					if l.Pagination.Total == b.N {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "stamps/s")
			})
		}
	})
}
