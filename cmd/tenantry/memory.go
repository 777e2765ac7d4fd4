package main

import (
	"context"
	"io/fs"
	"math"
	"path"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantry/tenantry/config"
)

// The memory policy of the long-running commands, serve and worker. Go's
// collector is tuned by two settings: GOGC, how far the heap may grow past
// what is live before a collection, and a soft memory limit, a total the
// runtime keeps its memory under by collecting sooner. tenantry sets both
// unless the operator did (GOGC and GOMEMLIMIT stay the overrides), and
// gives memory back once a burst of work is over.
//
// serverGCPercent keeps the collector cheap under steady load, when the
// live heap is a few MiB and a fivefold heap is still small. Alone it lets
// one burst of large garbage grow the heap without bound: every password
// hash allocates 19 MiB that is garbage 40 ms later, and four sign-ins at
// a time held 250 MiB. The memory limit caps that, and releasing memory
// when the process falls quiet brings it back down to what is live rather
// than to what the last burst needed.
const (
	// serverGCPercent is the garbage collector's target for serve and
	// worker when GOGC does not set one: the heap may grow to five times
	// what is live before a collection. A server's live heap is small and
	// its requests allocate briskly, so at Go's default of 100 it collects
	// so often that the collector takes a fifth of a listing's CPU; at 400
	// it takes a few percent.
	serverGCPercent = 400

	// memoryLimitBase is the memory limit's floor less the password
	// hashes that may run at once: the runtime's own memory, a small
	// server's live heap of a few MiB and room for one more hash to start
	// while the memory of the one that just finished waits for collection,
	// so that a burst of sign-ins is collected about once a hash rather
	// than continuously.
	memoryLimitBase = 24 << 20

	// cgroupLimitPercent is the share of a container's memory limit the
	// Go runtime may use: the rest is for what the runtime does not count,
	// SQLite's page caches and the binary's own pages among them.
	cgroupLimitPercent = 90

	// governInterval is how often the memory policy looks at the heap.
	governInterval = time.Second

	// quietAllocBytes: a process that allocated less than this in the
	// last interval is quiet. An idle server allocates tens of KiB a
	// second (job polling, the relay); one serving requests, MiBs.
	quietAllocBytes = 1 << 20

	// releaseMinBytes is the least garbage worth a forced collection.
	releaseMinBytes = 4 << 20
)

// heapStats is what the memory policy reads of the runtime.
type heapStats struct {
	// live is the heap the last collection found live.
	live uint64
	// scan is what a collection has to mark: the scannable part of the
	// heap, the stacks and the globals. A large buffer without pointers,
	// such as a password hash's memory, adds to live but not to scan.
	scan uint64
	// held is the heap memory backed by RAM that objects occupy, live or
	// dead and not yet collected, plus the free pages not yet returned to
	// the operating system. Less live, it is what a collection and a
	// release would give back; the unused ends of partly used spans,
	// which neither can, are not counted.
	held uint64
	// allocs is the total ever allocated on the heap.
	allocs uint64
}

// memoryLimitFloor is the least memory limit for a process that may hash
// hashSlots passwords at once with hashBytes of memory each: argon2id's
// memory is live while a hash runs, 19 MiB by default, so a limit below
// what the hashes in flight hold would have the collector run back to back
// through every burst of sign-ins. With the defaults on two cores, 62 MiB.
func memoryLimitFloor(hashSlots int, hashBytes uint64) uint64 {
	return memoryLimitBase + uint64(max(hashSlots, 0))*hashBytes
}

// memoryLimit is the soft memory limit for a process whose heap is s, with
// a floor from memoryLimitFloor, under a container memory limit of cgroup
// bytes (0: none).
//
// A fixed small limit would be wrong for a process whose live heap
// legitimately grows past it (many tenant databases open, large listings
// in flight): the collector would run back to back, for half the CPU once
// its limiter steps in, without freeing anything. So the limit never goes
// below the live heap plus one collection's marking work. With that much
// room, a collection's marking costs at most one byte per byte allocated
// since the previous one, which is what Go's default GOGC=100 costs on a
// heap made only of pointers; a large buffer without pointers, which costs
// nothing to mark, raises the limit by its size once rather than twice.
// Below that, for a small server, the floor applies, and GOGC governs
// until the heap nears it.
//
// Within a container the limit never exceeds cgroupLimitPercent of the
// container's: working the collector harder near the container's limit
// is better than the process being killed for crossing it.
func memoryLimit(s heapStats, floor, cgroup uint64) int64 {
	limit := max(floor, s.live+s.scan)
	if cgroup > 0 {
		limit = min(limit, cgroup/100*cgroupLimitPercent)
	}
	return int64(min(limit, math.MaxInt64))
}

// releaseDue reports whether to collect garbage and return free memory to
// the operating system now, given the heap one interval ago and now: when
// the process has fallen quiet and holds more memory beyond its live heap
// than releaseMinBytes and than one collection's marking work. Without it,
// the memory a burst used stays resident: the runtime returns only what
// exceeds the heap goal of the last collection, and an idle process
// allocates too little to start another for minutes. The live heap is as
// the last collection found it, which may have been while hashes were in
// flight; their memory then counts as live here, and is given back at the
// next release once the process allocates again. Requiring as much garbage
// as marking work bounds the cost: the forced collection gives back at
// least as many bytes as it has to mark.
func releaseDue(prev, cur heapStats) bool {
	if cur.allocs-prev.allocs >= quietAllocBytes || cur.held <= cur.live {
		return false
	}
	excess := cur.held - cur.live
	return excess >= releaseMinBytes && excess >= cur.scan
}

// memoryPolicy is the collector's configuration for one long-running
// command.
type memoryPolicy struct {
	// gcPercent and ownLimit say whether tenantry sets the GC target and
	// the memory limit, or GOGC and GOMEMLIMIT did.
	gcPercent bool
	ownLimit  bool
	// floor is the least memory limit, from memoryLimitFloor.
	floor uint64
	// cgroup is the container's memory limit, 0 when there is none.
	cgroup uint64
}

// newMemoryPolicy reads which settings the operator made (lookupEnv is
// os.LookupEnv: the runtime reads GOGC and GOMEMLIMIT from the process
// environment) and the container's memory limit from root, for a process
// hashing passwords as cfg says.
func newMemoryPolicy(cfg config.Config, lookupEnv func(string) (string, bool), root fs.FS) memoryPolicy {
	_, gogc := lookupEnv("GOGC")
	_, memLimit := lookupEnv("GOMEMLIMIT")
	slots := cfg.PasswordConcurrency
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0) // the hasher's default
	}
	return memoryPolicy{
		gcPercent: !gogc,
		ownLimit:  !memLimit,
		floor:     memoryLimitFloor(slots, uint64(cfg.PasswordMemoryKiB)<<10),
		cgroup:    cgroupMemoryLimit(root),
	}
}

// apply sets the GC target and the initial memory limit, and returns
// attributes describing them for the start-up log line.
func (p memoryPolicy) apply() []any {
	if p.gcPercent {
		debug.SetGCPercent(serverGCPercent)
	}
	source := "GOMEMLIMIT"
	if p.ownLimit {
		source = "default"
		debug.SetMemoryLimit(memoryLimit(readHeap(newHeapSamples()), p.floor, p.cgroup))
	}
	return []any{"memory_limit", debug.SetMemoryLimit(-1), "memory_limit_source", source}
}

// releaseMemory collects garbage and returns free memory to the operating
// system. It collects twice, since what a sync.Pool holds survives one
// collection in the pool's victim cache: the upload path's buffers, and at
// start-up the 4 MiB buffers migrations parse their SQL with, which would
// otherwise count as live (at GOGC=400 the first heap goal was 145 MiB for
// under 5 MiB of live heap).
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// run applies the policy until ctx ends: it moves the memory limit with
// the live heap and returns memory once the process falls quiet. Then it
// restores the runtime's defaults, for the commands run in tests' own
// processes.
func (p memoryPolicy) run(ctx context.Context) {
	defer func() {
		if p.gcPercent {
			debug.SetGCPercent(100)
		}
		if p.ownLimit {
			debug.SetMemoryLimit(math.MaxInt64)
		}
	}()
	samples := newHeapSamples()
	prev := readHeap(samples)
	applied := debug.SetMemoryLimit(-1)
	t := time.NewTicker(governInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := readHeap(samples)
		if p.ownLimit {
			if limit := memoryLimit(cur, p.floor, p.cgroup); limit != applied {
				debug.SetMemoryLimit(limit)
				applied = limit
			}
		}
		if releaseDue(prev, cur) {
			releaseMemory()
			cur = readHeap(samples)
		}
		prev = cur
	}
}

// newHeapSamples returns the runtime metrics heapStats is read from, in the
// order readHeap uses them.
func newHeapSamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/total:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
}

func readHeap(samples []metrics.Sample) heapStats {
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	live, objects, free := v(0), v(2), v(3)
	// Objects counts live objects and dead ones not yet swept; live is
	// as of the last collection, so objects may briefly be below it.
	return heapStats{live: live, scan: v(1), held: max(objects, live) + free, allocs: v(4)}
}

// noCgroupLimit is where a number read as a cgroup limit means "none":
// cgroup v1 reports an unlimited group as the largest page-aligned int64.
const noCgroupLimit = 1 << 62

// cgroupMemoryLimit returns the memory limit of the cgroup this process
// runs in, 0 when it has none or it cannot be read. root is the file
// system's root: /proc/self/cgroup names the group, and /sys/fs/cgroup
// holds its limit, memory.max for cgroup v2 and memory.limit_in_bytes for
// v1. A container usually sees its own group as the root of the cgroup
// file system while /proc/self/cgroup still names the full path, so every
// ancestor of the path is read too, and the smallest limit found wins, as
// the kernel enforces every ancestor's.
func cgroupMemoryLimit(root fs.FS) uint64 {
	data, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	var limit uint64
	for line := range strings.Lines(string(data)) {
		fields := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(fields) != 3 {
			continue
		}
		var dir, file string
		switch {
		case fields[0] == "0" && fields[1] == "":
			dir, file = "sys/fs/cgroup", "memory.max"
		case slices.Contains(strings.Split(fields[1], ","), "memory"):
			dir, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + fields[2]); ; p = path.Dir(p) {
			if n := readCgroupLimit(root, path.Join(dir, p, file)); n > 0 && (limit == 0 || n < limit) {
				limit = n
			}
			if p == "/" {
				break
			}
		}
	}
	return limit
}

// readCgroupLimit reads one limit file; 0 means none or unreadable.
func readCgroupLimit(root fs.FS, name string) uint64 {
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || n >= noCgroupLimit {
		return 0 // "max", or v1's unlimited
	}
	return n
}
