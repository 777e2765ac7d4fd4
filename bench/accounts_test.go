package bench_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// BenchmarkGetMe measures authenticated GET /api/users/me on a `tenantry
// serve` child under a closed-loop load of loadClients concurrent
// keep-alive clients: requests per second and latency percentiles. It is
// the cheapest authenticated request there is (verify the token, check the
// session, read the user), so its rate bounds every other request's.
//
// It runs at log level warn, which leaves the access log out, and at the
// default info, which writes one JSON line per request, since that is what
// users run. Each level gets a fresh child, loaded first by the benchmark's
// own Go client and then by wrk, which needs less CPU for the same load and
// so leaves more of the two cores to the server; wrk's sub-benchmark is
// skipped when wrk is not installed. Each run also reports the cores the
// server used on average (server-cores), warm-up included.
//
// It is a fixed-duration measurement that ignores b.N: run it with
// -benchtime 1x.
func BenchmarkGetMe(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		for _, level := range []string{"warn", "info"} {
			b.Run("log="+level, func(b *testing.B) {
				c := startChild(b, bin, shape, "TENANTRY_LOG_LEVEL="+level)
				a := c.signUp(b, "Me")
				url := c.url + "/api/users/me"
				auth := "Bearer " + a.token
				b.Run("client=go/clients="+strconv.Itoa(loadClients), func(b *testing.B) {
					var r loadResult
					cores := c.cores(b, func() {
						r = driveLoad(b, loadClients, func() *http.Request {
							req, _ := http.NewRequest(http.MethodGet, url, nil)
							req.Header.Set("Authorization", auth)
							return req
						})
					})
					reportLoad(b, r)
					b.ReportMetric(cores, "server-cores")
				})
				b.Run("client=wrk/clients="+strconv.Itoa(loadClients), func(b *testing.B) {
					var r wrkResult
					cores := c.cores(b, func() { r = runWrk(b, wrkThreads, loadClients, url, "Authorization: "+auth) })
					reportWrk(b, r)
					b.ReportMetric(cores, "server-cores")
				})
			})
		}
	})
}

// wrkThreads is one: a single wrk thread keeps 32 connections busy at these
// rates, and a second would only take CPU from the server.
const wrkThreads = 1

// BenchmarkLogin measures POST /api/auth/login with the right password, one
// request after another, on a child hashing with the default argon2id
// parameters (19 MiB, 2 passes, 1 lane): the latency a user waits for at
// sign-in, dominated by the deliberate cost of the hash.
func BenchmarkLogin(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		c := startChild(b, bin, shape, "TENANTRY_RATE_LIMIT_LOGIN=0")
		a := c.signUp(b, "Login")
		body := mustJSON(b, map[string]string{"email": a.email, "password": apptest.Password})
		durations := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			durations = append(durations, timedLogin(b, c, body, http.StatusOK))
		}
		b.StopTimer()
		reportLatencies(b, durations)
	})
}

// BenchmarkLoginFailureTiming compares the latency of a login with an email
// nobody registered against a login with a registered email and a wrong
// password. Both answer 401 with the same body, and their timing should not
// tell them apart either, or the endpoint reveals which emails have
// accounts. Each iteration sends one of each, alternating which goes first;
// b.N is the number of pairs. The child hashes with the default argon2id
// parameters, has login rate limiting off and a failure limit high enough
// that the account never locks, so that every wrong-password attempt takes
// the same path.
func BenchmarkLoginFailureTiming(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		c := startChild(b, bin, shape, "TENANTRY_RATE_LIMIT_LOGIN=0", "TENANTRY_LOGIN_MAX_FAILURES=1000000000")
		a := c.register(b, "Victim")
		const wrong = "Wrong-horse-8"
		wrongBody := mustJSON(b, map[string]string{"email": a.email, "password": wrong})
		unknownBody := func(i int) []byte {
			return mustJSON(b, map[string]string{"email": fmt.Sprintf("nobody.%d.%s@example.com", i, randomHex(4)), "password": wrong})
		}
		// The first unknown-email login also hashes the stand-in
		// password it verifies against; neither first attempt is timed.
		timedLogin(b, c, unknownBody(-1), http.StatusUnauthorized)
		timedLogin(b, c, wrongBody, http.StatusUnauthorized)

		unknown := make([]time.Duration, 0, b.N)
		wrongPassword := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := range b.N {
			u := unknownBody(i)
			if i%2 == 0 {
				unknown = append(unknown, timedLogin(b, c, u, http.StatusUnauthorized))
				wrongPassword = append(wrongPassword, timedLogin(b, c, wrongBody, http.StatusUnauthorized))
			} else {
				wrongPassword = append(wrongPassword, timedLogin(b, c, wrongBody, http.StatusUnauthorized))
				unknown = append(unknown, timedLogin(b, c, u, http.StatusUnauthorized))
			}
		}
		b.StopTimer()
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		mean := func(ds []time.Duration) float64 {
			var total time.Duration
			for _, d := range ds {
				total += d
			}
			return ms(total) / float64(len(ds))
		}
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(mean(unknown), "unknown-ms/op")
		b.ReportMetric(ms(percentile(unknown, 50)), "unknown-p50-ms")
		b.ReportMetric(ms(percentile(unknown, 99)), "unknown-p99-ms")
		b.ReportMetric(mean(wrongPassword), "wrong-ms/op")
		b.ReportMetric(ms(percentile(wrongPassword, 50)), "wrong-p50-ms")
		b.ReportMetric(ms(percentile(wrongPassword, 99)), "wrong-p99-ms")
	})
}

// timedLogin posts body to /api/auth/login, checks the status and returns
// how long the answer took, reading it whole.
func timedLogin(b *testing.B, c *child, body []byte, want int) time.Duration {
	b.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url+"/api/auth/login", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	status, data := c.do(b, req)
	d := time.Since(start)
	if status != want {
		b.Fatalf("login: status %d, want %d\n%s", status, want, data)
	}
	return d
}

func mustJSON(b *testing.B, v any) []byte {
	b.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
