package main

import (
	"bufio"
	"encoding/json"
	"os"
	"runtime/metrics"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

const mib = 1 << 20

func TestMemoryLimitFloor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		slots     int
		hashBytes uint64
		want      uint64
	}{
		{2, 19 * mib, 62 * mib}, // the defaults on two cores
		{8, 19 * mib, 176 * mib},
		{1, 64 << 10, 24*mib + 64<<10},
		{0, 19 * mib, 24 * mib},
	}
	for _, tt := range tests {
		if got := memoryLimitFloor(tt.slots, tt.hashBytes); got != tt.want {
			t.Errorf("memoryLimitFloor(%d, %d) = %d MiB, want %d MiB", tt.slots, tt.hashBytes, got/mib, tt.want/mib)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	const floor = 62 * mib
	tests := []struct {
		name   string
		heap   heapStats
		cgroup uint64
		want   int64
	}{
		{"a small heap gets the floor", heapStats{live: 4 * mib, scan: 3 * mib}, 0, floor},
		{"two hashes in flight still fit under the floor", heapStats{live: 42 * mib, scan: 3 * mib}, 0, floor},
		{"a large live heap keeps room for one collection's marking", heapStats{live: 300 * mib, scan: 200 * mib}, 0, 500 * mib},
		{"memory without pointers counts once", heapStats{live: 200 * mib, scan: 10 * mib}, 0, 210 * mib},
		{"a roomy container changes nothing", heapStats{live: 4 * mib, scan: 3 * mib}, 4096 * mib, floor},
		{"a small container caps the floor", heapStats{live: 4 * mib, scan: 3 * mib}, 50 * mib, 45 * mib},
		{"a container caps a large heap", heapStats{live: 900 * mib, scan: 600 * mib}, 1000 * mib, 900 * mib},
	}
	for _, tt := range tests {
		if got := memoryLimit(tt.heap, floor, tt.cgroup); got != tt.want {
			t.Errorf("%s: memoryLimit(%+v, %d MiB, %d MiB) = %d MiB, want %d MiB", tt.name, tt.heap, floor/mib, tt.cgroup/mib, got/mib, tt.want/mib)
		}
	}
}

func TestReleaseDue(t *testing.T) {
	t.Parallel()
	idle := heapStats{live: 4 * mib, scan: 3 * mib, held: 5 * mib, allocs: 1000 * mib}
	// step returns idle one interval later, after allocating alloc bytes,
	// with the given live and held heap.
	step := func(alloc, live, scan, held uint64) heapStats {
		return heapStats{live: live, scan: scan, held: held, allocs: idle.allocs + alloc}
	}
	tests := []struct {
		name string
		cur  heapStats
		want bool
	}{
		{"quiet, holding little beyond the live heap", step(100<<10, 4*mib, 3*mib, 6*mib), false},
		{"quiet after a burst of hashes", step(100<<10, 4*mib, 3*mib, 60*mib), true},
		{"quiet, the last collection having counted two hashes as live", step(0, 42*mib, 3*mib, 55*mib), true},
		{"still busy", step(40*mib, 4*mib, 3*mib, 60*mib), false},
		{"quiet, but the garbage is less than a collection marks", step(0, 400*mib, 300*mib, 600*mib), false},
		{"quiet, with garbage worth more than a collection marks", step(0, 400*mib, 300*mib, 800*mib), true},
		{"quiet, holding less than the live heap", step(0, 40*mib, 3*mib, 30*mib), false},
	}
	for _, tt := range tests {
		if got := releaseDue(idle, tt.cur); got != tt.want {
			t.Errorf("%s: releaseDue = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Ensure that the runtime knows every metric the policy reads: an unknown
// one would read as zero and quietly leave the limit at its floor.
func TestHeapMetricsExist(t *testing.T) {
	t.Parallel()
	samples := newHeapSamples()
	metrics.Read(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			t.Errorf("runtime metric %s has kind %v, want a uint64", s.Name, s.Value.Kind())
		}
	}
	if h := readHeap(samples); h.live == 0 && h.allocs == 0 {
		t.Errorf("readHeap = %+v: nothing allocated so far?", h)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	t.Parallel()
	const v1Unlimited = "9223372036854771712\n"
	tests := []struct {
		name  string
		files fstest.MapFS
		want  uint64
	}{
		{"no cgroup file", fstest.MapFS{}, 0},
		{"v2, the container's own group at the root", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("536870912\n")},
		}, 512 * mib},
		{"v2 without a limit", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
		}, 0},
		{"v2, a service's group and a smaller parent", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("0::/system.slice/tenantry.service\n")},
			"sys/fs/cgroup/system.slice/tenantry.service/memory.max": {Data: []byte("1073741824\n")},
			"sys/fs/cgroup/system.slice/memory.max":                  {Data: []byte("268435456\n")},
		}, 256 * mib},
		{"v2, the named group not visible from inside the container", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/kubepods/pod1/abc\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("134217728\n")},
		}, 128 * mib},
		{"v1 with a limit", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n")},
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": {Data: []byte("209715200\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            {Data: []byte(v1Unlimited)},
		}, 200 * mib},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup":                           {Data: []byte("4:memory:/process/abc\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte(v1Unlimited)},
		}, 0},
		{"garbage", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("nonsense\n0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("lots\n")},
		}, 0},
	}
	for _, tt := range tests {
		if got := cgroupMemoryLimit(tt.files); got != tt.want {
			t.Errorf("%s: cgroupMemoryLimit = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// Ensure that serve and worker set the default memory limit, and leave the
// one GOMEMLIMIT sets to the runtime, in both shapes.
func TestServeAndWorkerSetAMemoryLimit(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		environ := func() map[string]string {
			env := apptest.Environ(t, shape)
			env["TENANTRY_PASSWORD_HASH_CONCURRENCY"] = "3"
			return env
		}
		// A process starts with a live heap far below the floor: 24 MiB
		// plus three hashes of 64 KiB, unless its container allows less.
		floor := memoryLimitFloor(3, 64<<10)
		want := memoryLimit(heapStats{}, floor, cgroupMemoryLimit(os.DirFS("/")))
		expect := func(p *process, msg string, limit int64, source string) {
			t.Helper()
			line := logLine(t, p.logs, msg)
			if got, _ := line["memory_limit"].(float64); int64(got) != limit || line["memory_limit_source"] != source {
				t.Errorf("%s: memory_limit %v from %v, want %d from %s", msg, line["memory_limit"], line["memory_limit_source"], limit, source)
			}
		}
		expect(startServe(t, environ()), "tenantry listening", want, "default")
		chosen := environ()
		chosen["GOMEMLIMIT"] = "300MiB"
		expect(startServe(t, chosen), "tenantry listening", 300*mib, "GOMEMLIMIT")
		if shape == config.Production {
			expect(startWorker(t, environ()), "tenantry worker running", want, "default")
		}
	})
}

// logLine returns the first JSON log line whose message is msg.
func logLine(t *testing.T, logs *syncBuffer, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			return line
		}
	}
	t.Fatalf("no %q log line:\n%s", msg, logs.String())
	return nil
}
