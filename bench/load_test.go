package bench_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Load runs a warm-up and then a measured window. Two seconds let the
// child's connections, caches and heap reach their steady size; ten give a
// p99 resting on thousands of samples at the rates measured here.
const (
	loadWarmup = 2 * time.Second
	loadWindow = 10 * time.Second
	// loadClients is the number of concurrent clients, each with its own
	// keep-alive connection: enough to keep two cores busy through every
	// wait on a disk or a database, and what the documented figures use.
	loadClients = 32
)

// loadWindowEnv, set to a Go duration, shortens (or lengthens) the measured
// window of every load benchmark, for trial runs while writing one.
const loadWindowEnv = "TENANTRY_BENCH_LOAD_WINDOW"

// window returns the measured window: loadWindow unless loadWindowEnv says
// otherwise.
func window(b *testing.B) time.Duration {
	b.Helper()
	v := os.Getenv(loadWindowEnv)
	if v == "" {
		return loadWindow
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q is not a positive duration", loadWindowEnv, v)
	}
	return d
}

// loadResult is what one load run measured.
type loadResult struct {
	window    time.Duration
	latencies []time.Duration // of the requests started within the window
}

func (r loadResult) perSecond() float64 {
	return float64(len(r.latencies)) / r.window.Seconds()
}

// driveLoad sends requests built by newRequest from clients goroutines, each
// waiting for its answer before sending the next (a closed loop, so the
// offered load adapts to the server and no request queues on the client),
// over keep-alive connections, for loadWarmup and then the measured window.
// Every answer must have status 200. Requests started in the window count,
// with their whole latency, even if they end after it.
func driveLoad(b *testing.B, clients int, newRequest func() *http.Request) loadResult {
	b.Helper()
	measured := window(b)
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: time.Minute}

	start := time.Now()
	from, until := start.Add(loadWarmup), start.Add(loadWarmup+measured)
	perClient := make([][]time.Duration, clients)
	failures := make([]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			for {
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				res, err := client.Do(newRequest())
				if err != nil {
					failures[i] = err.Error()
					return
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				d := time.Since(t0)
				if err != nil || res.StatusCode != http.StatusOK {
					failures[i] = fmt.Sprintf("status %d, read error %v", res.StatusCode, err)
					return
				}
				if !t0.Before(from) {
					lat = append(lat, d)
				}
			}
			perClient[i] = lat
		})
	}
	wg.Wait()
	for _, f := range failures {
		if f != "" {
			b.Fatalf("a client failed: %s", f)
		}
	}
	r := loadResult{window: measured}
	for _, lat := range perClient {
		r.latencies = append(r.latencies, lat...)
	}
	return r
}

// reportLoad reports a load run as requests per second and latency
// percentiles, in place of ns/op.
func reportLoad(b *testing.B, r loadResult) {
	b.Helper()
	if len(r.latencies) == 0 {
		b.Fatal("no request completed in the measured window")
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.perSecond(), "req/s")
	b.ReportMetric(ms(percentile(r.latencies, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(r.latencies, 99)), "p99-ms")
}

// wrkResult is what wrk printed about one run.
type wrkResult struct {
	perSecond float64
	p50, p99  time.Duration
}

// wrkLatency matches a line of wrk's latency distribution, "99%  12.34ms".
var wrkLatency = regexp.MustCompile(`^\s*(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`) //nolint:gochecknoglobals // compiled once, read-only

// runWrk runs wrk against url with headers, first for loadWarmup (its
// answer discarded), then for the measured window, and parses its report.
// It skips the benchmark when wrk is not installed.
func runWrk(b *testing.B, threads, connections int, url string, headers ...string) wrkResult {
	b.Helper()
	path, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not installed (on Debian: apt-get install wrk); only the Go client's figures are measured")
	}
	args := func(d time.Duration) []string {
		a := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(connections), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
		for _, h := range headers {
			a = append(a, "-H", h)
		}
		return append(a, url)
	}
	if out, err := exec.Command(path, args(loadWarmup)...).CombinedOutput(); err != nil {
		b.Fatalf("wrk warm-up: %v\n%s", err, out)
	}
	measured := max(window(b), time.Second)
	a := args(measured)
	out, err := exec.Command(path, a...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	var r wrkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Non-2xx or 3xx responses") || strings.Contains(line, "Socket errors") {
			b.Fatalf("wrk saw failed requests:\n%s", out)
		}
		if v, ok := strings.CutPrefix(line, "Requests/sec:"); ok {
			r.perSecond, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if m := wrkLatency.FindStringSubmatch(line); m != nil {
			d, err := time.ParseDuration(m[2] + m[3])
			if err != nil {
				b.Fatalf("wrk latency %q: %v", line, err)
			}
			if m[1] == "50" {
				r.p50 = d
			} else {
				r.p99 = d
			}
		}
	}
	if r.perSecond == 0 || r.p50 == 0 || r.p99 == 0 {
		b.Fatalf("could not read wrk's report:\n%s", out)
	}
	// Headers carry a token; the command is logged without them.
	b.Logf("wrk %s (headers elided)\n%s", strings.Join(a[:4], " ")+" "+url, out)
	return r
}

// reportWrk reports wrk's figures like reportLoad does the Go client's.
func reportWrk(b *testing.B, r wrkResult) {
	b.Helper()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.perSecond, "req/s")
	b.ReportMetric(ms(r.p50), "p50-ms")
	b.ReportMetric(ms(r.p99), "p99-ms")
}
