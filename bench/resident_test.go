package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/jobs"
	"github.com/tenantry/tenantry/postgres"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/sqlite"
)

// The steps BenchmarkResidentMemory takes on every server.
const (
	// signInConnections is the number of clients signing in at once,
	// each on its own keep-alive connection, for the load window.
	signInConnections = 4
	// residentUploads uploads of residentUploadSize follow the sign-ins.
	residentUploads    = 3
	residentUploadSize = 100 * mib
	// residentSettle is the pause after a server has fallen idle and
	// before its memory is read: what a server does with memory once
	// work stops is part of what is measured, and a few seconds are what
	// an operator glancing at a process after a burst would give it.
	residentSettle = 3 * time.Second
)

// footprint is a process's resident memory at one moment, from
// /proc/<pid>/status: VmRSS, and its anonymous (heap, stacks, allocator
// caches) and file-backed (the binary's pages, mapped files) parts.
type footprint struct {
	rss, anon, file int64
}

func readFootprint(b *testing.B, pid int) footprint {
	b.Helper()
	p := strconv.Itoa(pid)
	return footprint{rss: childStatus(b, p, "VmRSS"), anon: childStatus(b, p, "RssAnon"), file: childStatus(b, p, "RssFile")}
}

func (f footprint) String() string {
	return strconv.FormatFloat(float64(f.rss)/mib, 'f', 1, 64) + " MiB (anonymous " +
		strconv.FormatFloat(float64(f.anon)/mib, 'f', 1, 64) + ", file " + strconv.FormatFloat(float64(f.file)/mib, 'f', 1, 64) + ")"
}

// residentServer is what BenchmarkResidentMemory does to one server.
type residentServer struct {
	proc *child
	// signIn signs the one user in once with the right password over
	// client.
	signIn func(client *http.Client) error
	// upload stores one generated file of size bytes over client.
	upload func(client *http.Client, size int64)
	// list lists the uploaded files.
	list func()
}

// BenchmarkResidentMemory measures, in one run, the resident memory of a
// `tenantry serve` child (embedded shape; production too when
// TENANTRY_TEST_DATABASE_URL is set) and of PocketBase (when installed; see
// pocketBaseBinary), taking the same steps on each:
//
//   - idle: after start, setup (one user; a tenant, or a collection with a
//     file field of up to 200 MiB), a warm-up (a sign-in, a 1 MiB upload
//     and a listing), the server falling idle and a settle pause;
//   - a burst of sign-ins with the right password for the load window (10
//     seconds) at four concurrent connections: the peak during it (VmHWM,
//     reset through /proc/<pid>/clear_refs before) and the memory after it
//     has fallen idle and settled;
//   - three uploads of 100 MiB, one after another, streamed: likewise the
//     peak during them and the memory after.
//
// Each server runs with its defaults but for what the steps need: tenantry
// with login rate limiting off (PocketBase's is off by default) and
// uploads of up to 200 MB. So tenantry hashes with argon2id at 19 MiB and
// two passes, PocketBase with bcrypt at cost 10, which costs less CPU and
// memory per sign-in; signins/s reports the rate each sustained.
//
// Both binaries are first copied into the benchmark's directory with
// 64 KiB writes, so that their pages are in the page cache alike: a binary
// the Go linker has just written, through a memory map, or one written in
// a single large write can sit in large page-cache folios that the kernel
// then maps whole, which added from 4 to 17 MiB to the same binary's
// RssFile here.
//
// It is a one-shot measurement that ignores b.N: run it with -benchtime 1x.
func BenchmarkResidentMemory(b *testing.B) {
	bin := installCopy(b, buildTenantry(b))
	block := newBlock()
	b.Run("server=tenantry", func(b *testing.B) {
		eachShape(b, func(b *testing.B, shape config.Shape) {
			measureResident(b, tenantryResident(b, bin, shape, block))
		})
	})
	b.Run("server=pocketbase", func(b *testing.B) {
		pb := startPocketBase(b, installCopy(b, pocketBaseBinary(b)))
		measureResident(b, residentServer{
			proc:   pb.child,
			signIn: func(client *http.Client) error { _, err := pb.signIn(client); return err },
			upload: func(client *http.Client, size int64) { pb.upload(b, client, block, size) },
			list:   func() { pb.send(b, http.MethodGet, "/api/collections/uploads/records", pb.token, nil, nil) },
		})
	})
}

// tenantryResident starts a tenantry child with a user and a tenant.
func tenantryResident(b *testing.B, bin string, shape config.Shape, block []byte) residentServer {
	b.Helper()
	c := startChild(b, bin, shape, "TENANTRY_RATE_LIMIT_LOGIN=0", "TENANTRY_MAX_UPLOAD_MB=200")
	a := c.signUp(b, "Resident")
	t := c.createTenant(b, a, "Resident")
	login := mustJSON(b, map[string]string{"email": a.email, "password": apptest.Password})
	return residentServer{
		proc: c,
		signIn: func(client *http.Client) error {
			req, err := http.NewRequest(http.MethodPost, c.url+"/api/auth/login", bytes.NewReader(login))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("login: %w", err)
			}
			data, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				return fmt.Errorf("login: status %d, %v\n%s", res.StatusCode, err, data)
			}
			return nil
		},
		upload: func(client *http.Client, size int64) { upload(b, c, client, a.token, t.ID, block, size) },
		list: func() {
			c.call(b, http.MethodGet, "/api/tenants/"+t.ID+"/documents", a.token, nil, http.StatusOK, nil)
		},
	}
}

// measureResident takes BenchmarkResidentMemory's steps on s and reports
// what it measured, in MiB.
func measureResident(b *testing.B, s residentServer) {
	b.Helper()
	pid := s.proc.pid
	client := uploadClient()
	if err := s.signIn(client); err != nil {
		b.Fatal(err)
	}
	s.upload(client, mib)
	s.list()
	idle := settledFootprint(b, s.proc)

	resetPeak(b, pid)
	var signIns atomic.Int64
	measured := window(b)
	deadline := time.Now().Add(measured)
	failures := make([]error, signInConnections)
	var wg sync.WaitGroup
	for i := range signInConnections {
		wg.Go(func() {
			client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for time.Now().Before(deadline) {
				if failures[i] = s.signIn(client); failures[i] != nil {
					return
				}
				signIns.Add(1)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(failures...); err != nil {
		b.Fatal(err)
	}
	burstPeak := childStatus(b, strconv.Itoa(pid), "VmHWM")
	afterBurst := settledFootprint(b, s.proc)

	resetPeak(b, pid)
	for range residentUploads {
		s.upload(client, residentUploadSize)
	}
	uploadPeak := childStatus(b, strconv.Itoa(pid), "VmHWM")
	afterUploads := settledFootprint(b, s.proc)

	rate := float64(signIns.Load()) / measured.Seconds()
	b.Logf("idle %s; %d sign-ins (%.1f/s): peak %.1f MiB, then %s; %d uploads of %d MiB: peak %.1f MiB, then %s",
		idle, signIns.Load(), rate, float64(burstPeak)/mib, afterBurst, residentUploads, residentUploadSize/mib, float64(uploadPeak)/mib, afterUploads)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(idle.rss)/mib, "idle-MiB")
	b.ReportMetric(float64(idle.anon)/mib, "idle-anon-MiB")
	b.ReportMetric(float64(idle.file)/mib, "idle-file-MiB")
	b.ReportMetric(float64(burstPeak)/mib, "signin-peak-MiB")
	b.ReportMetric(float64(afterBurst.rss)/mib, "after-signin-MiB")
	b.ReportMetric(rate, "signins/s")
	b.ReportMetric(float64(uploadPeak)/mib, "upload-peak-MiB")
	b.ReportMetric(float64(afterUploads.rss)/mib, "after-upload-MiB")
}

// restartTenants is the number of tenants BenchmarkRestartMemory restarts
// a server on.
const restartTenants = 200

// BenchmarkRestartMemory measures what the process running tenantry's
// background jobs holds once it has restarted on data with 200 tenants,
// each with a document, and its start-up maintenance has run: storage
// reconciliation, event pruning and the outbox sweep visit every tenant's
// database. The tenants are created through the API by a `tenantry serve`
// child, which is then stopped with SIGTERM; then `tenantry serve` in the
// embedded shape, `tenantry worker` in the production one (where serve runs
// no jobs), starts on the same data directory or control database, and
// once it has fallen idle and settled (as in BenchmarkResidentMemory) its
// resident memory is read. Hashing is cheap here, since sign-ins are not
// what is measured.
//
// Periodic jobs are unique per period, so a process restarted within the
// period its predecessor ran them in does not run them at start. Before
// the restart, the benchmark deletes the first child's runs of them from
// the job table, as if the period had ended.
//
// It is a one-shot measurement that ignores b.N: run it with -benchtime 1x.
func BenchmarkRestartMemory(b *testing.B) {
	bin := installCopy(b, buildTenantry(b))
	block := newBlock()
	eachShape(b, func(b *testing.B, shape config.Shape) {
		c := startChild(b, bin, shape, "TENANTRY_PASSWORD_HASH_MEMORY_KIB=64", "TENANTRY_PASSWORD_HASH_ITERATIONS=1")
		a := c.signUp(b, "Owner")
		client := uploadClient()
		for i := range restartTenants {
			t := c.createTenant(b, a, "Tenant "+strconv.Itoa(i))
			upload(b, c, client, a.token, t.ID, block, 4*kib)
		}
		c.stop()
		control := openControlDatabase(b, c, shape)
		kinds := []any{jobs.ReconcileStorage{}.Kind(), jobs.PruneOutbox{}.Kind(), jobs.SweepOutbox{}.Kind(),
			jobs.CleanupSessions{}.Kind(), jobs.ReapTenants{}.Kind(), jobs.PurgeTenants{}.Kind()}
		if _, err := control.Exec(context.Background(), `DELETE FROM river_job WHERE kind IN ($1, $2, $3, $4, $5, $6)`, kinds...); err != nil {
			b.Fatal(err)
		}
		if err := control.Close(); err != nil {
			b.Fatal(err)
		}

		command := "serve"
		if shape == config.Production {
			command = "worker"
		}
		c = restartChild(b, bin, command, c)
		idle := settledFootprint(b, c)
		b.Logf("restarted on %d tenants: %s", restartTenants, idle)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(idle.rss)/mib, "idle-MiB")
		b.ReportMetric(float64(idle.anon)/mib, "idle-anon-MiB")
		b.ReportMetric(float64(idle.file)/mib, "idle-file-MiB")
	})
}

// openControlDatabase opens a stopped child's control database.
func openControlDatabase(b *testing.B, c *child, shape config.Shape) sqldb.DB {
	b.Helper()
	if shape == config.Embedded {
		db, err := sqlite.Open(filepath.Join(c.dataDir, "control.db"), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return db
	}
	cfg, err := postgres.ParseURL(c.databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	db, err := postgres.Open(context.Background(), cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// settledFootprint waits until the process has fallen idle and then for
// residentSettle, and reads its memory.
func settledFootprint(b *testing.B, proc *child) footprint {
	b.Helper()
	proc.waitIdle(b)
	time.Sleep(residentSettle)
	return readFootprint(b, proc.pid)
}

// resetPeak resets the process's VmHWM to its current VmRSS.
func resetPeak(b *testing.B, pid int) {
	b.Helper()
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("resetting the peak resident memory of process %d: %v", pid, err)
	}
}

// installCopy copies the executable at path into the benchmark's directory
// with 64 KiB writes and returns the copy's path (see
// BenchmarkResidentMemory for why).
func installCopy(b *testing.B, path string) string {
	b.Helper()
	src, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dstPath := filepath.Join(b.TempDir(), filepath.Base(path))
	dst, err := os.OpenFile(dstPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		b.Fatal(err)
	}
	// Hiding the files' types keeps io.CopyBuffer from handing the copy
	// to the kernel, which would choose its own write sizes.
	if _, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 64*kib)); err != nil {
		dst.Close()
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
	return dstPath
}
