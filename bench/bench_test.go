package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/tenant"
)

// eachShape runs fn as one sub-benchmark per shape, skipping the production
// shape with a message when no PostgreSQL server is configured.
func eachShape(b *testing.B, fn func(b *testing.B, shape config.Shape)) {
	b.Helper()
	for _, shape := range apptest.Shapes {
		b.Run(string(shape), func(b *testing.B) {
			apptest.RequireShape(b, shape)
			fn(b, shape)
		})
	}
}

// reportLatencies replaces ns/op with the mean, median and 99th percentile of
// the measured durations in milliseconds, since the mean alone hides the
// slow tail that a user actually waits for.
func reportLatencies(b *testing.B, durations []time.Duration) {
	b.Helper()
	if len(durations) == 0 {
		return
	}
	var total time.Duration
	for _, d := range durations {
		total += d
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(total)/float64(len(durations)), "ms/op")
	b.ReportMetric(ms(percentile(durations, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(durations, 99)), "p99-ms")
}

// percentile returns the nearest-rank p-th percentile of durations; with
// fewer than a hundred samples the 99th is the slowest one.
func percentile(durations []time.Duration, p float64) time.Duration {
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// provisionMany creates n tenants, four at a time, as setup for benchmarks
// that need many tenants and do not measure how they were made.
func provisionMany(b *testing.B, p *tenant.Provisioner, n int) []*tenantry.Tenant {
	b.Helper()
	out := make([]*tenantry.Tenant, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || b.Failed() {
					return
				}
				tn, err := p.Provision(context.Background(), fmt.Sprintf("Tenant %d", i), "", nil)
				if err != nil {
					b.Errorf("provision tenant %d: %v", i, err)
					return
				}
				out[i] = tn
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return out
}

// memory is the process's footprint at one moment.
type memory struct {
	rss       int64 // resident set size, as the operating system counts it
	heapInuse int64 // bytes in in-use spans of the Go heap
	// heapAlloc is the bytes of live Go objects. Unlike heapInuse it does
	// not move by whole spans as the collector compacts its free lists, so
	// it resolves costs of a few kilobytes that heapInuse hides in noise.
	heapAlloc int64
}

// measureMemory collects garbage until the heap stops shrinking, returns freed
// pages to the operating system and then reads both figures, so that two
// readings differ by what is still referenced rather than by when the
// collector last ran. One collection is not enough: objects with finalizers
// (closed files, pools, connections) and sync.Pool contents survive it and
// go only at the next.
func measureMemory(b *testing.B) memory {
	b.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	for range 10 {
		prev := ms.HeapInuse
		// Finalizers run on their own goroutine; give it a moment.
		time.Sleep(10 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse >= prev {
			break
		}
	}
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	rss, err := residentSetSize()
	if err != nil {
		b.Skipf("resident set size unavailable (it is read from /proc/self/status, Linux only): %v", err)
	}
	return memory{rss: rss, heapInuse: int64(ms.HeapInuse), heapAlloc: int64(ms.HeapAlloc)}
}

// residentSetSize reads VmRSS, which unlike the Go runtime's figures also
// counts memory allocated outside the Go heap, such as the pure-Go SQLite
// driver's C-style allocator and the pages of mapped files.
func residentSetSize() (int64, error) {
	return procStatus("self", "VmRSS")
}

// procStatus reads a memory field (VmRSS, VmHWM, ...) of /proc/<pid>/status
// in bytes; pid "self" is this process.
func procStatus(pid, field string) (int64, error) {
	path := "/proc/" + pid + "/status"
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s %q: %w", field, rest, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s line in %s", field, path)
}
