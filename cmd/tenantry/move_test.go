package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// movingTenant is a tenant on server one of a deployment with two servers,
// served by processes of its own.
type movingTenant struct {
	env           map[string]string
	id, token     string
	first, second string
}

// newMovingTenant registers server one, creates a tenant there through api,
// and registers server two.
func newMovingTenant(t *testing.T, env map[string]string, api *process) *movingTenant {
	t.Helper()
	mt := &movingTenant{env: env, first: apptest.ServerTemplate(t), second: apptest.RequireSecondServer(t)}
	if code, out := runCLI(t, env, "servers", "add", "one", "--url", mt.first); code != 0 {
		t.Fatalf("servers add one: %s", out)
	}
	email := "mover-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@example.com"
	creds := map[string]string{"email": email, "password": "correct-horse-7"}
	if status, body := api.do(t, http.MethodPost, "/api/auth/register", "", map[string]string{
		"first_name": "M", "last_name": "O", "email": email, "password": "correct-horse-7"}); status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, body)
	}
	status, body := api.do(t, http.MethodPost, "/api/auth/login", "", creds)
	if status != http.StatusOK {
		t.Fatalf("login: %d %v", status, body)
	}
	mt.token = body["data"].(map[string]any)["access_token"].(string)
	status, body = api.do(t, http.MethodPost, "/api/tenants", mt.token, map[string]string{"name": "Moving"})
	if status != http.StatusCreated {
		t.Fatalf("create tenant: %d %v", status, body)
	}
	mt.id = body["data"].(map[string]any)["id"].(string)
	if code, out := runCLI(t, env, "servers", "add", "two", "--url", mt.second); code != 0 {
		t.Fatalf("servers add two: %s", out)
	}
	return mt
}

// upload posts one document through p, retrying while the tenant refuses
// writes (503, after its Retry-After), and returns its id; "" when the
// upload failed otherwise, reported through t.
func (mt *movingTenant) upload(t *testing.T, p *process, name string) string {
	for attempt := 0; attempt < 100; attempt++ {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		part, _ := w.CreateFormFile("file", name)
		_, _ = part.Write([]byte("content of " + name))
		_ = w.Close()
		req, _ := http.NewRequest(http.MethodPost, p.url("/api/tenants/"+mt.id+"/documents"), &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+mt.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("upload %s: %v", name, err)
			return ""
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch res.StatusCode {
		case http.StatusCreated:
			var out struct {
				Data struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			_ = json.Unmarshal(body, &out)
			return out.Data.ID
		case http.StatusServiceUnavailable:
			wait, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * 200 * time.Millisecond)
		default:
			t.Errorf("upload %s answered %d: %s\n%s", name, res.StatusCode, body, internalErrors(p))
			return ""
		}
	}
	t.Errorf("upload %s refused 100 times", name)
	return ""
}

// get reads path through p, retrying a 503 (a read that met the old
// database as it went), and returns the body.
func (mt *movingTenant) get(t *testing.T, p *process, path string) []byte {
	for attempt := 0; attempt < 50; attempt++ {
		req, _ := http.NewRequest(http.MethodGet, p.url(path), nil)
		req.Header.Set("Authorization", "Bearer "+mt.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return nil
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		switch res.StatusCode {
		case http.StatusOK:
			return body
		case http.StatusServiceUnavailable:
			time.Sleep(200 * time.Millisecond)
		default:
			t.Errorf("GET %s answered %d: %s\n%s", path, res.StatusCode, body, internalErrors(p))
			return nil
		}
	}
	t.Errorf("GET %s refused 50 times", path)
	return nil
}

// documents lists every document of the tenant through p: name to id.
func (mt *movingTenant) documents(t *testing.T, p *process) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for page := 1; ; page++ {
		var list struct {
			Data struct {
				Documents []struct {
					ID       string `json:"id"`
					Filename string `json:"filename"`
				} `json:"documents"`
				Pagination struct {
					Pages int `json:"pages"`
				} `json:"pagination"`
			} `json:"data"`
		}
		if err := json.Unmarshal(mt.get(t, p, fmt.Sprintf("/api/tenants/%s/documents?per_page=100&page=%d", mt.id, page)), &list); err != nil {
			t.Fatal(err)
		}
		for _, d := range list.Data.Documents {
			out[d.Filename] = append(out[d.Filename], d.ID)
		}
		if page >= list.Data.Pagination.Pages {
			return out
		}
	}
}

func (mt *movingTenant) server(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, mt.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var server string
	if err := conn.QueryRow(ctx, `SELECT COALESCE(server, '') FROM tenants WHERE id = $1`, mt.id).Scan(&server); err != nil {
		t.Fatal(err)
	}
	return server
}

// Ensure a move under concurrent writes and reads through two API processes
// loses nothing, duplicates nothing, and leaves every document downloadable
// on the new server.
func TestMoveUnderLoadThroughTwoProcesses(t *testing.T) {
	apptest.RequireSecondServer(t)
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	a, b := startServe(t, env), startServe(t, env)
	startWorker(t, env)
	mt := newMovingTenant(t, env, a)
	for i := range 20 {
		if mt.upload(t, a, fmt.Sprintf("before-%d.txt", i)) == "" {
			t.FailNow()
		}
	}

	var (
		stop     atomic.Bool
		mu       sync.Mutex
		uploaded = map[string]string{}
		load     sync.WaitGroup
		reads    atomic.Int64
	)
	for w := range 4 {
		p := []*process{a, b}[w%2]
		load.Go(func() {
			for n := 0; !stop.Load(); n++ {
				name := fmt.Sprintf("w%d-%d.txt", w, n)
				if id := mt.upload(t, p, name); id != "" {
					mu.Lock()
					uploaded[name] = id
					mu.Unlock()
				}
			}
		})
	}
	for r := range 2 {
		p := []*process{a, b}[r]
		load.Go(func() {
			for !stop.Load() {
				mt.get(t, p, "/api/tenants/"+mt.id+"/documents?per_page=5")
				reads.Add(1)
			}
		})
	}
	time.Sleep(time.Second)
	code, out := runCLI(t, env, "tenants", "move", mt.id, "--to", "two")
	time.Sleep(time.Second)
	stop.Store(true)
	load.Wait()
	if code != 0 {
		t.Fatalf("tenants move: %d\n%s", code, out)
	}
	if !strings.Contains(out, "switched to server two") {
		t.Fatalf("tenants move said:\n%s", out)
	}
	if server := mt.server(t); server != "two" {
		t.Fatalf("after the move the tenant is on %q", server)
	}

	for _, p := range []*process{a, b} {
		docs := mt.documents(t, p)
		want := len(uploaded) + 20
		if len(docs) != want {
			t.Errorf("through %s: %d distinct documents, want the %d acknowledged", p.addr, len(docs), want)
		}
		for name, ids := range docs {
			if len(ids) != 1 {
				t.Errorf("%s is listed %d times", name, len(ids))
			}
		}
		for name, id := range uploaded {
			if got := docs[name]; len(got) != 1 || got[0] != id {
				t.Errorf("acknowledged upload %s (%s) listed as %v", name, id, got)
			}
		}
	}
	for name, id := range uploaded {
		if body := mt.get(t, b, "/api/tenants/"+mt.id+"/documents/"+id+"/download"); string(body) != "content of "+name {
			t.Fatalf("download of %s after the move: %q", name, body)
		}
	}
	t.Logf("%d uploads acknowledged and %d listings read during the move\n%s", len(uploaded), reads.Load(), out)
	if len(uploaded) == 0 || reads.Load() == 0 {
		t.Fatal("no load ran during the move")
	}
}

// Ensure a move killed while it copies leaves the tenant working on its old
// server at once, that a worker then undoes what it left, and that the
// tenant can be moved again.
func TestMoveKilledHalfwayLeavesTheTenantWorking(t *testing.T) {
	apptest.RequireSecondServer(t)
	t.Parallel()
	env := apptest.Environ(t, config.Production)
	env["TENANTRY_MOVE_STALE_AFTER"] = "2s"
	api := startServe(t, env)
	startWorker(t, env)
	mt := newMovingTenant(t, env, api)
	for i := range 5 {
		mt.upload(t, api, fmt.Sprintf("before-%d.txt", i))
	}
	database := bulkDocuments(t, mt, 100000)

	cmd := exec.Command(tenantryBinary(t), "tenants", "move", mt.id, "--to", "two")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var said strings.Builder
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "copying") {
			_ = cmd.Process.Kill()
			break
		}
	}
	_ = cmd.Wait()
	if !strings.Contains(said.String(), "copying") {
		t.Fatalf("the move never started copying:\n%s", said.String())
	}

	// Working at once: the fence was never raised.
	if mt.upload(t, api, "after-kill.txt") == "" {
		t.FailNow()
	}
	if server := mt.server(t); server != "one" {
		t.Fatalf("after the killed move the tenant is on %q", server)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		onTwo := onServer(t, mt.second, database)
		if !onTwo && !followed(t, mt.first, database) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the kill, the move was not undone (copy on two: %v)", onTwo)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, out := runCLI(t, env, "tenants", "move", mt.id, "--to", "two"); code != 0 {
		t.Fatalf("moving again: %d\n%s", code, out)
	}
	// The documents bulk-inserted bypassed the counters a listing's total
	// comes from: the ones uploaded are looked up by name.
	for _, name := range []string{"after-kill.txt", "before-0.txt"} {
		var list struct {
			Data struct {
				Documents []struct {
					Filename string `json:"filename"`
				} `json:"documents"`
			} `json:"data"`
		}
		if err := json.Unmarshal(mt.get(t, api, "/api/tenants/"+mt.id+"/documents?filename="+name), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Data.Documents) != 1 {
			t.Fatalf("after moving again, %s is listed %d times", name, len(list.Data.Documents))
		}
	}
}

// bulkDocuments adds n documents of one file straight into the tenant's
// database, enough that copying them takes a while, and returns the
// database's name.
func bulkDocuments(t *testing.T, mt *movingTenant, n int) string {
	t.Helper()
	ctx := context.Background()
	control, err := pgx.Connect(ctx, mt.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close(ctx)
	var database string
	if err := control.QueryRow(ctx, `SELECT database_name FROM tenants WHERE id = $1`, mt.id).Scan(&database); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, strings.ReplaceAll(mt.first, "{database_name}", database))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `
		INSERT INTO documents (id, filename, filename_key, mime_type, file_id, user_id, created_at, updated_at)
		SELECT gen_random_uuid(), 'bulk-' || i || '.txt', 'bulk-' || i || '.txt', 'text/plain', f.id, gen_random_uuid(), now(), now()
		FROM generate_series(1, $1) i, (SELECT id FROM files LIMIT 1) f`, n); err != nil {
		t.Fatal(err)
	}
	return database
}

// followed reports whether a move's triggers are still on the database.
func followed(t *testing.T, template, database string) bool {
	t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, strings.ReplaceAll(template, "{database_name}", database))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tenantry_move_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// internalErrors returns the log lines of p that report internal errors.
func internalErrors(p *process) string {
	var b strings.Builder
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		if strings.Contains(line, `"internal error"`) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
