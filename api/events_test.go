package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/outbox"
)

type streamEvent struct {
	Position  int64           `json:"position"`
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	Version   int             `json:"version"`
	TenantID  string          `json:"tenant_id"`
	UserID    string          `json:"user_id"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

type streamPage struct {
	Events     []streamEvent `json:"events"`
	NextCursor string        `json:"next_cursor"`
	HasMore    bool          `json:"has_more"`
}

// eventually retries check until it succeeds or time runs out.
func eventually(t *testing.T, within time.Duration, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func types(events []streamEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.EventType)
	}
	return out
}

func TestTenantEventStream(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		users := "/api/tenants/" + d.tenantID + "/users/"
		d.Do(t, put(users+d.user.ID, d.admin.AccessToken, map[string]string{"role": "viewer"})).Expect(t, 200, "")
		doc := d.Upload(t, d.admin, d.tenantID, "report.pdf", []byte("%PDF-1.4 events"))
		d.Do(t, put(d.docs()+"/"+doc.ID, d.admin.AccessToken, map[string]string{"filename": "final.pdf"})).Expect(t, 200, "")
		d.Do(t, del(d.docs()+"/"+doc.ID, d.admin.AccessToken)).Expect(t, 200, "")

		// Events recorded by the tenant's own database keep their order, as
		// do those recorded by the control database and forwarded.
		control := []string{tenantry.EventTenantCreated, tenantry.EventMemberAdded, tenantry.EventMemberAdded, tenantry.EventMemberAdded,
			tenantry.EventMemberRoleChanged}
		own := []string{tenantry.EventDocumentUploaded, tenantry.EventFileProcess, tenantry.EventDocumentUpdated, tenantry.EventDocumentDeleted}
		stream := "/api/tenants/" + d.tenantID + "/events"
		var all streamPage
		eventually(t, 10*time.Second, func() bool {
			d.Get(t, stream+"?limit=100", d.admin.AccessToken).Expect(t, 200, "").Data(t, &all)
			return len(all.Events) >= len(control)+len(own)
		})
		var gotControl, gotOwn []string
		for _, e := range all.Events {
			if slices.Contains(own, e.EventType) {
				gotOwn = append(gotOwn, e.EventType)
			} else {
				gotControl = append(gotControl, e.EventType)
			}
		}
		if !slices.Equal(gotControl, control) || !slices.Equal(gotOwn, own) {
			t.Fatalf("stream = %v", types(all.Events))
		}
		for i, e := range all.Events {
			if e.Position != int64(i+1) || e.TenantID != d.tenantID || e.Version != 1 || len(e.EventID) != 36 ||
				!strings.HasSuffix(e.Timestamp, "Z") || len(e.Data) == 0 {
				t.Fatalf("event %d = %+v", i, e)
			}
		}
		var uploaded struct {
			DocumentID string `json:"document_id"`
			FileID     string `json:"file_id"`
		}
		for _, e := range all.Events {
			if e.EventType == tenantry.EventDocumentUploaded {
				if err := json.Unmarshal(e.Data, &uploaded); err != nil {
					t.Fatal(err)
				}
			}
		}
		if uploaded.DocumentID != doc.ID || uploaded.FileID != doc.FileID {
			t.Fatalf("document.uploaded data = %+v", uploaded)
		}

		// Paging with the cursor yields the same stream.
		var paged []streamEvent
		cursor := ""
		for range 10 {
			var page streamPage
			d.Get(t, stream+"?limit=3&after="+url.QueryEscape(cursor), d.admin.AccessToken).Expect(t, 200, "").Data(t, &page)
			paged = append(paged, page.Events...)
			cursor = page.NextCursor
			if !page.HasMore {
				break
			}
		}
		if len(paged) != len(all.Events) || paged[len(paged)-1].EventID != all.Events[len(all.Events)-1].EventID {
			t.Fatalf("paged %d events", len(paged))
		}
		var empty streamPage
		d.Get(t, stream+"?after="+cursor, d.admin.AccessToken).Expect(t, 200, "").Data(t, &empty)
		if len(empty.Events) != 0 || empty.NextCursor != cursor {
			t.Fatalf("past the end: %+v", empty)
		}

		d.Get(t, stream, d.user.AccessToken).Expect(t, 403, "FORBIDDEN")
		d.Get(t, stream, d.stranger.AccessToken).Expect(t, 404, "NOT_FOUND")
		d.Get(t, stream+"?after=abc", d.admin.AccessToken).Expect(t, 400, "BAD_REQUEST")
		d.Get(t, stream+"?limit=0", d.admin.AccessToken).Expect(t, 400, "BAD_REQUEST")
	})
}

type collector struct {
	mu     sync.Mutex
	events []tenantry.Event
}

func (c *collector) handle(_ context.Context, ev tenantry.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
	return nil
}

func (c *collector) has(eventType, userID string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.events, func(ev tenantry.Event) bool { return ev.EventType == eventType && ev.UserID == userID })
}

func TestPlatformEventsReachConsumers(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		c := &collector{}
		env.App.Dispatcher.Subscribe(c.handle)
		u := env.SignUp(t, "Eventful")
		env.Do(t, apptest.Request{Method: "PUT", Path: "/api/users/me", Token: u.AccessToken, Body: map[string]string{"first_name": "Renamed"}}).Expect(t, 200, "")
		env.Do(t, apptest.Request{Method: "POST", Path: "/api/auth/logout", Token: u.AccessToken}).Expect(t, 200, "")
		eventually(t, 10*time.Second, func() bool {
			return c.has(tenantry.EventUserRegistered, u.ID) && c.has(tenantry.EventUserUpdated, u.ID) && c.has(tenantry.EventSessionRevoked, u.ID)
		})
	})
}

func TestNewFilesAreProcessed(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 64)...)
		doc := d.Upload(t, d.admin, d.tenantID, "not-a-pdf.pdf", png)
		var file struct {
			FileMetadata map[string]any `json:"file_metadata"`
		}
		eventually(t, 20*time.Second, func() bool {
			d.Get(t, "/api/tenants/"+d.tenantID+"/files/"+doc.FileID, d.admin.AccessToken).Expect(t, 200, "").Data(t, &file)
			return file.FileMetadata["detected_mime_type"] != nil
		})
		if file.FileMetadata["detected_mime_type"] != "image/png" {
			t.Fatalf("metadata = %v", file.FileMetadata)
		}
	})
}

func TestARedeliveredEventIsActedOnOnce(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		fileID := uuid.NewString()
		ev, err := outbox.NewEvent(tenantry.EventFileProcess, uuid.NewString(), "", map[string]string{"file_id": fileID})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := env.App.Dispatcher.Publish(context.Background(), []tenantry.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
		var jobs int
		if err := env.App.Engines.Control.QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE kind = 'process_file' AND CAST(args AS TEXT) LIKE $1`, "%"+fileID+"%").Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if jobs != 1 {
			t.Fatalf("%d jobs for one event delivered three times", jobs)
		}
	})
}

func TestJobsDashboardIsForPlatformAdmins(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		if _, _, err := env.App.Accounts.EnsurePlatformAdmin(context.Background(), account.AdminAccount{
			Email: "root@example.com", Password: apptest.Password, FirstName: "Root", LastName: "Admin"}); err != nil {
			t.Fatal(err)
		}
		root := env.Login(t, &apptest.User{Email: "root@example.com"})
		member := env.SignUp(t, "Member")

		api := "/admin/jobs/api/jobs?state=completed&limit=20"
		env.Get(t, api, "").Expect(t, 401, "UNAUTHORIZED")
		env.Get(t, api, member.AccessToken).Expect(t, 403, "FORBIDDEN")
		res := env.Get(t, api, root.AccessToken)
		if res.Status != 200 || !strings.Contains(string(res.Body), `"data"`) {
			t.Fatalf("admin: %d %.200s", res.Status, res.Body)
		}
		if res := env.Get(t, "/admin/jobs/", root.AccessToken); res.Status != 200 || !strings.Contains(string(res.Body), "<html") {
			t.Fatalf("dashboard page: %d", res.Status)
		}

		// A browser is sent to the login form, and signs in there.
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", env.URL+"/admin/jobs/", nil)
		req.Header.Set("Accept", "text/html")
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/admin/login") {
			t.Fatalf("anonymous browser: %d %s", r.StatusCode, r.Header.Get("Location"))
		}
		login := func(email string) *http.Response {
			r, err := client.PostForm(env.URL+"/admin/login", url.Values{"email": {email}, "password": {apptest.Password}, "next": {"/admin/jobs/"}})
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r
		}
		if r := login(member.Email); r.StatusCode != http.StatusForbidden || len(r.Cookies()) != 0 {
			t.Fatalf("member sign-in: %d, cookies %v", r.StatusCode, r.Cookies())
		}
		r = login("root@example.com")
		if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 || !r.Cookies()[0].HttpOnly || r.Cookies()[0].SameSite != http.SameSiteStrictMode {
			t.Fatalf("admin sign-in: %d, cookies %v", r.StatusCode, r.Cookies())
		}
		req, _ = http.NewRequest("GET", env.URL+api, nil)
		req.AddCookie(r.Cookies()[0])
		if r, err := client.Do(req); err != nil || r.StatusCode != 200 {
			t.Fatalf("with the cookie: %v %v", r, err)
		}
	})
}
