package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// cursorPage is the part of a listing a walk by cursor reads, whichever
// listing it is.
type cursorPage struct {
	Documents  []struct{ ID string } `json:"documents"`
	Files      []struct{ ID string } `json:"files"`
	Entries    []struct{ ID string } `json:"entries"`
	Pagination struct {
		Page       int     `json:"page"`
		Total      int64   `json:"total"`
		Pages      int64   `json:"pages"`
		NextCursor *string `json:"next_cursor"`
	} `json:"pagination"`
}

func (p cursorPage) ids() []string {
	var out []string
	for _, r := range p.Documents {
		out = append(out, r.ID)
	}
	for _, r := range p.Files {
		out = append(out, r.ID)
	}
	for _, r := range p.Entries {
		out = append(out, r.ID)
	}
	return out
}

// withQuery joins a listing's path, its query and more parameters.
func withQuery(path, query string, more ...string) string {
	parts := append([]string{}, more...)
	if query != "" {
		parts = append([]string{query}, parts...)
	}
	if len(parts) == 0 {
		return path
	}
	return path + "?" + strings.Join(parts, "&")
}

func listPage(t *testing.T, env *apptest.Env, token, path string) cursorPage {
	t.Helper()
	var p cursorPage
	env.Get(t, path, token).Expect(t, http.StatusOK, "").Data(t, &p)
	return p
}

// walk follows next_cursor from the first page of path (with query) to the
// last, checking each page's number, and returns the ids in the order
// seen. between runs after each page.
func walk(t *testing.T, env *apptest.Env, token, path, query string, perPage int, between func()) []string {
	t.Helper()
	var ids []string
	p := listPage(t, env, token, withQuery(path, query, fmt.Sprintf("per_page=%d", perPage)))
	for n := 1; ; n++ {
		if p.Pagination.Page != n {
			t.Fatalf("%s %s: page %d says it is page %d", path, query, n, p.Pagination.Page)
		}
		ids = append(ids, p.ids()...)
		if p.Pagination.NextCursor == nil {
			return ids
		}
		if len(p.ids()) != perPage {
			t.Fatalf("%s %s: page %d has %d rows and a next cursor", path, query, n, len(p.ids()))
		}
		if n > 1000 {
			t.Fatalf("%s %s: walk does not end", path, query)
		}
		if between != nil {
			between()
		}
		p = listPage(t, env, token, withQuery(path, query, fmt.Sprintf("per_page=%d", perPage), "cursor="+*p.Pagination.NextCursor))
	}
}

// Ensure walking a listing by cursor returns every row once, in the
// listing's order, for every order and filter, and that the pagination
// of each page is true.
func TestCursorWalksEveryRowOnce(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		// Names repeat, in different cases, so that orders by name must
		// break ties by id across page boundaries.
		names := []string{"a.txt", "B.txt", "a.txt", "c.pdf", "A.TXT", "b.txt", "a.txt", "d.pdf", "c.pdf", "a.txt", "e.txt", "B.TXT", "a.txt"}
		for i, name := range names {
			d.Upload(t, d.user, d.tenantID, name, []byte(fmt.Sprintf("content %d", i)))
		}
		files := "/api/tenants/" + d.tenantID + "/files"
		audit := "/api/tenants/" + d.tenantID + "/audit"
		for _, c := range []struct{ path, query string }{
			{d.docs(), ""},
			{d.docs(), "sort=created_at"},
			{d.docs(), "sort=filename"},
			{d.docs(), "sort=-filename"},
			{d.docs(), "sort=filename&filename=A"},
			{d.docs(), "sort=-created_at&filename=.txt"},
			{d.docs(), "filename=nothing"},
			{files, ""},
			{files, "include_stats=true"},
			{audit, ""},
			{audit, "action=document.upload"},
			{audit, "actor=" + d.user.ID + "&from=" + url.QueryEscape("2000-01-01T00:00:00Z")},
		} {
			want := listPage(t, d.Env, d.admin.AccessToken, withQuery(c.path, c.query, "per_page=100"))
			for _, perPage := range []int{1, 3, 4} {
				got := walk(t, d.Env, d.admin.AccessToken, c.path, c.query, perPage, nil)
				if strings.Join(got, ",") != strings.Join(want.ids(), ",") {
					t.Errorf("%s?%s by %d: walked\n%v\nwant\n%v", c.path, c.query, perPage, got, want.ids())
				}
			}
			// Every page of a walk carries the total and page count.
			p := listPage(t, d.Env, d.admin.AccessToken, withQuery(c.path, c.query, "per_page=3"))
			if p.Pagination.NextCursor == nil {
				continue
			}
			p = listPage(t, d.Env, d.admin.AccessToken, withQuery(c.path, c.query, "per_page=3", "cursor="+*p.Pagination.NextCursor))
			if p.Pagination.Total != want.Pagination.Total || p.Pagination.Pages != (want.Pagination.Total+2)/3 || p.Pagination.Page != 2 {
				t.Errorf("%s?%s: second page's pagination %+v, total %d", c.path, c.query, p.Pagination, want.Pagination.Total)
			}
		}
		// A walk may begin from any page by number.
		first := listPage(t, d.Env, d.admin.AccessToken, d.docs()+"?per_page=4&page=2")
		next := listPage(t, d.Env, d.admin.AccessToken, d.docs()+"?per_page=4&cursor="+*first.Pagination.NextCursor)
		third := listPage(t, d.Env, d.admin.AccessToken, d.docs()+"?per_page=4&page=3")
		if next.Pagination.Page != 3 || strings.Join(next.ids(), ",") != strings.Join(third.ids(), ",") {
			t.Errorf("cursor from page 2: page %d %v, want page 3 %v", next.Pagination.Page, next.ids(), third.ids())
		}
	})
}

// Ensure a walk by cursor never returns a row twice, and misses no row
// that existed throughout, while documents are uploaded and deleted
// around it: the row a cursor names may even be gone.
func TestCursorWalkUnderConcurrentChanges(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		stable := map[string]bool{}
		for i := range 12 {
			stable[d.Upload(t, d.user, d.tenantID, fmt.Sprintf("stable-%02d.txt", i%5), []byte(fmt.Sprintf("stable %d", i))).ID] = true
		}
		var (
			mu    sync.Mutex
			churn []string
			n     int
		)
		change := func() {
			mu.Lock()
			n++
			i := n
			mu.Unlock()
			// Names sort both before and after the stable ones.
			id := d.Upload(t, d.user, d.tenantID, fmt.Sprintf("%c-%d.txt", "asz"[i%3], i), []byte(fmt.Sprintf("churn %d", i))).ID
			mu.Lock()
			churn = append(churn, id)
			var gone string
			if len(churn) > 2 {
				gone, churn = churn[0], churn[1:]
			}
			mu.Unlock()
			if gone != "" {
				d.Do(t, apptest.Request{Method: http.MethodDelete, Path: d.docs() + "/" + gone, Token: d.user.AccessToken}).Expect(t, http.StatusOK, "")
			}
		}
		for _, sort := range []string{"-created_at", "created_at", "filename", "-filename"} {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						change()
					}
				}
			}()
			// Changes also land between every two pages, so that each
			// cursor is used on a listing that moved since it was made.
			ids := walk(t, d.Env, d.user.AccessToken, d.docs(), "sort="+sort, 2, change)
			close(stop)
			wg.Wait()
			count := map[string]int{}
			for _, id := range ids {
				count[id]++
				if count[id] > 1 {
					t.Errorf("sort %s: %s returned twice", sort, id)
				}
			}
			for id := range stable {
				if count[id] != 1 {
					t.Errorf("sort %s: stable document %s returned %d times", sort, id, count[id])
				}
			}
		}

		// The row a cursor ends on may be deleted before the next page.
		p := listPage(t, d.Env, d.user.AccessToken, d.docs()+"?per_page=3")
		last := p.Documents[2].ID
		d.Do(t, apptest.Request{Method: http.MethodDelete, Path: d.docs() + "/" + last, Token: d.user.AccessToken}).Expect(t, http.StatusOK, "")
		next := listPage(t, d.Env, d.user.AccessToken, d.docs()+"?per_page=3&cursor="+*p.Pagination.NextCursor)
		all := listPage(t, d.Env, d.user.AccessToken, d.docs()+"?per_page=100")
		if strings.Join(next.ids(), ",") != strings.Join(all.ids()[2:5], ",") {
			t.Errorf("after deleting the cursor's row: %v, want %v", next.ids(), all.ids()[2:5])
		}
	})
}

// Ensure a cursor is refused, 400 in the envelope, when it was forged,
// cut short, or made for another tenant, order, filter or listing, and
// when it comes with a page number.
func TestCursorRefused(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		other := d.CreateTenant(t, d.admin, "Other")
		for i := range 3 {
			d.Upload(t, d.admin, d.tenantID, fmt.Sprintf("a%d.txt", i), []byte(fmt.Sprintf("a %d", i)))
			d.Upload(t, d.admin, other, fmt.Sprintf("ab%d.txt", i), []byte(fmt.Sprintf("b %d", i)))
		}
		otherDocs := "/api/tenants/" + other + "/documents"
		files := "/api/tenants/" + d.tenantID + "/files"
		audit := "/api/tenants/" + d.tenantID + "/audit"
		next := func(path string) string {
			p := listPage(t, d.Env, d.admin.AccessToken, path)
			c := p.Pagination.NextCursor
			if c == nil {
				t.Fatalf("%s: no next cursor: %+v", path, p)
			}
			return *c
		}
		c := next(d.docs() + "?per_page=1&sort=filename&filename=a")
		flipped := []byte(c)
		if flipped[5] == 'A' {
			flipped[5] = 'B'
		} else {
			flipped[5] = 'A'
		}
		otherC := next(otherDocs + "?per_page=1&sort=filename&filename=a")
		for name, path := range map[string]string{
			"forged":           d.docs() + "?per_page=1&sort=filename&filename=a&cursor=" + string(flipped),
			"truncated":        d.docs() + "?per_page=1&sort=filename&filename=a&cursor=" + c[:len(c)-4],
			"made up":          d.docs() + "?per_page=1&sort=filename&filename=a&cursor=bm90LWEtY3Vyc29y",
			"other tenant's":   d.docs() + "?per_page=1&sort=filename&filename=a&cursor=" + otherC,
			"on other tenant":  otherDocs + "?per_page=1&sort=filename&filename=a&cursor=" + c,
			"changed sort":     d.docs() + "?per_page=1&sort=-filename&filename=a&cursor=" + c,
			"default sort":     d.docs() + "?per_page=1&filename=a&cursor=" + c,
			"changed filter":   d.docs() + "?per_page=1&sort=filename&filename=a0&cursor=" + c,
			"dropped filter":   d.docs() + "?per_page=1&sort=filename&cursor=" + c,
			"with a page":      d.docs() + "?per_page=1&sort=filename&filename=a&page=2&cursor=" + c,
			"on files":         files + "?per_page=1&cursor=" + c,
			"on audit":         audit + "?per_page=1&cursor=" + c,
			"files on audit":   audit + "?per_page=1&cursor=" + next(files+"?per_page=1"),
			"audit filter":     audit + "?per_page=1&action=document.upload&cursor=" + next(audit+"?per_page=1"),
			"not a cursor":     d.docs() + "?cursor=" + url.QueryEscape("a cursor?"),
			"audit on docs":    d.docs() + "?per_page=1&cursor=" + next(audit+"?per_page=1"),
			"audit other time": audit + "?per_page=1&from=2000-01-01T00:00:00Z&cursor=" + next(audit+"?per_page=1&from=2000-01-01T00:00:01Z"),
		} {
			res := d.Get(t, path, d.admin.AccessToken)
			if res.Status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400\n%s", name, res.Status, res.Body)
				continue
			}
			if code := res.ErrorCode(t); code != "BAD_REQUEST" && code != "VALIDATION_ERROR" {
				t.Errorf("%s: code %s", name, code)
			}
		}
		// The same cursor, unchanged, is accepted; page=1 beside it is
		// the default and harmless.
		listPage(t, d.Env, d.admin.AccessToken, d.docs()+"?per_page=1&sort=filename&filename=a&page=1&cursor="+c)
		// A stranger to the tenant learns nothing from a good cursor.
		d.Get(t, d.docs()+"?per_page=1&sort=filename&filename=a&cursor="+c, d.stranger.AccessToken).Expect(t, http.StatusNotFound, "NOT_FOUND")
	})
}
