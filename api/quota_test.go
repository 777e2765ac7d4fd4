package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/quota"
)

type quotaJSON struct {
	Limit *int64 `json:"limit"`
	Used  int64  `json:"used"`
}

type storageJSON struct {
	DocumentsCount int64 `json:"documents_count"`
	PhysicalBytes  int64 `json:"physical_bytes"`
	LogicalBytes   int64 `json:"logical_bytes"`
	Quotas         struct {
		Storage   quotaJSON `json:"storage"`
		Documents quotaJSON `json:"documents"`
		Members   quotaJSON `json:"members"`
	} `json:"quotas"`
}

type quotaErrorJSON struct {
	Error struct {
		Code    string        `json:"code"`
		Details quota.Details `json:"details"`
	} `json:"error"`
}

func ptr(n int64) *int64 { return &n }

func (d *docsEnv) storage(t *testing.T) storageJSON {
	t.Helper()
	var s storageJSON
	d.Get(t, "/api/tenants/"+d.tenantID+"/storage", d.viewer.AccessToken).Expect(t, http.StatusOK, "").Data(t, &s)
	return s
}

func (d *docsEnv) setQuotas(t *testing.T, overrides ...quota.Override) {
	t.Helper()
	if _, err := d.App.Quotas.Set(context.Background(), d.tenantID, overrides); err != nil {
		t.Fatal(err)
	}
}

// expectQuotaExceeded checks a refusal and its details.
func expectQuotaExceeded(t *testing.T, res *apptest.Response, kind quota.Kind, limit, used int64) {
	t.Helper()
	res.Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")
	var e quotaErrorJSON
	res.Decode(t, &e)
	if want := (quota.Details{Quota: kind, Limit: limit, Used: used}); e.Error.Details != want {
		t.Fatalf("details = %+v, want %+v", e.Error.Details, want)
	}
}

func (d *docsEnv) upload(t *testing.T, name string, content []byte) *apptest.Response {
	t.Helper()
	return d.UploadParts(t, d.user.AccessToken, d.tenantID, apptest.Part{Name: "file", Filename: name, ContentType: "text/plain", Body: content})
}

// noTemporaryBlobs fails if a refused upload left a blob behind.
func (d *docsEnv) noTemporaryBlobs(t *testing.T) {
	t.Helper()
	if tmp := d.blobs(t, blob.TempDir); len(tmp) != 0 {
		t.Fatalf("temporary blobs left behind: %v", tmp)
	}
}

func TestStorageQuota(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		s := d.storage(t)
		if s.Quotas.Storage.Limit != nil || s.Quotas.Documents.Limit != nil || s.Quotas.Members.Limit != nil || s.Quotas.Members.Used != 3 {
			t.Fatalf("quotas without any limit: %+v", s.Quotas)
		}
		d.setQuotas(t, quota.Override{Kind: quota.Storage, Limit: ptr(1000)})

		a := bytes.Repeat([]byte("a"), 400)
		d.upload(t, "a.txt", a).Expect(t, http.StatusCreated, "")
		// The same content again is stored once: it takes no more room.
		d.upload(t, "a again.txt", a).Expect(t, http.StatusCreated, "")
		s = d.storage(t)
		if s.Quotas.Storage.Limit == nil || *s.Quotas.Storage.Limit != 1000 || s.Quotas.Storage.Used != 400 || s.PhysicalBytes != 400 || s.LogicalBytes != 800 {
			t.Fatalf("storage after a content stored twice: %+v", s)
		}

		// Read while it streams (no length declared): stopped past the room.
		expectQuotaExceeded(t, d.upload(t, "b.txt", bytes.Repeat([]byte("b"), 601)), quota.Storage, 1000, 400)
		d.noTemporaryBlobs(t)
		d.upload(t, "b.txt", bytes.Repeat([]byte("b"), 600)).Expect(t, http.StatusCreated, "")
		expectQuotaExceeded(t, d.upload(t, "c.txt", []byte("c")), quota.Storage, 1000, 1000)
		if s = d.storage(t); s.Quotas.Storage.Used != 1000 || s.DocumentsCount != 3 {
			t.Fatalf("storage at the limit: %+v", s)
		}

		// Deleting a document frees nothing while its content is shared;
		// deleting the file frees its bytes.
		var list struct {
			Documents []apptest.Document `json:"documents"`
		}
		d.Get(t, d.docs()+"?filename=b.txt", d.admin.AccessToken).Expect(t, http.StatusOK, "").Data(t, &list)
		d.Do(t, apptest.Request{Method: http.MethodDelete, Path: d.docs() + "/" + list.Documents[0].ID, Token: d.admin.AccessToken}).Expect(t, http.StatusOK, "")
		d.Do(t, apptest.Request{Method: http.MethodDelete, Path: "/api/tenants/" + d.tenantID + "/files/" + list.Documents[0].FileID, Token: d.admin.AccessToken}).Expect(t, http.StatusOK, "")
		d.upload(t, "c.txt", bytes.Repeat([]byte("c"), 600)).Expect(t, http.StatusCreated, "")

		// Explicitly unlimited, then back to the default (unlimited too).
		d.setQuotas(t, quota.Override{Kind: quota.Storage})
		d.upload(t, "d.txt", bytes.Repeat([]byte("d"), 5000)).Expect(t, http.StatusCreated, "")
		d.setQuotas(t, quota.Override{Kind: quota.Storage, Limit: ptr(10)})
		expectQuotaExceeded(t, d.upload(t, "e.txt", []byte("e")), quota.Storage, 10, 6000)
		d.setQuotas(t, quota.Override{Kind: quota.Storage, Default: true})
		d.upload(t, "e.txt", []byte("e")).Expect(t, http.StatusCreated, "")
		if s = d.storage(t); s.Quotas.Storage.Limit != nil {
			t.Fatalf("storage quota back to the default: %+v", s.Quotas.Storage)
		}
		d.noTemporaryBlobs(t)
	})
}

// An upload whose declared size cannot fit is refused before its content
// is read: the body below never sends more than the file part's headers,
// and stays open until the answer has come.
func TestUploadOverQuotaIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		d.setQuotas(t, quota.Override{Kind: quota.Storage, Limit: ptr(100 << 10)})
		d.upload(t, "small.txt", []byte("small")).Expect(t, http.StatusCreated, "")

		for _, tc := range []struct {
			name          string
			contentLength int64
			partLength    int64
		}{
			{"request Content-Length", 10 << 20, 0},
			{"part Content-Length", 0, 200 << 10},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pr, pw := io.Pipe()
				defer pw.Close()
				boundary := "quota-boundary"
				header := textproto.MIMEHeader{}
				header.Set("Content-Disposition", `form-data; name="file"; filename="big.bin"`)
				if tc.partLength > 0 {
					header.Set("Content-Length", strconv.FormatInt(tc.partLength, 10))
				}
				head := "--" + boundary + "\r\n"
				for k, v := range header {
					head += k + ": " + v[0] + "\r\n"
				}
				head += "\r\n"
				go func() {
					// Only the part's headers, and the first bytes of
					// its content, ever arrive.
					_, _ = pw.Write([]byte(head + "first bytes"))
				}()
				res := d.Do(t, apptest.Request{Method: http.MethodPost, Path: d.docs(), Token: d.user.AccessToken,
					Body: pr, ContentLength: tc.contentLength, ContentType: "multipart/form-data; boundary=" + boundary})
				expectQuotaExceeded(t, res, quota.Storage, 100<<10, 5)
			})
		}
		d.noTemporaryBlobs(t)
		if s := d.storage(t); s.Quotas.Storage.Used != 5 || s.DocumentsCount != 1 {
			t.Fatalf("storage after refused uploads: %+v", s)
		}
	})
}

// Uploads racing for the last bytes of a quota never pass it together:
// exactly the ones that fit are stored, and nothing of the others is.
func TestParallelUploadsNeverPassTheStorageQuota(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		const size, n, fit = 300, 10, 3
		d.setQuotas(t, quota.Override{Kind: quota.Storage, Limit: ptr(fit*size + size/2)})
		statuses := make([]*apptest.Response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				statuses[i] = d.upload(t, fmt.Sprintf("race-%d.txt", i), bytes.Repeat([]byte{byte('a' + i)}, size))
			})
		}
		wg.Wait()
		created := 0
		for _, res := range statuses {
			switch res.Status {
			case http.StatusCreated:
				created++
			default:
				res.Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")
			}
		}
		if created != fit {
			t.Fatalf("%d uploads stored, want the %d that fit", created, fit)
		}
		s := d.storage(t)
		if s.PhysicalBytes != fit*size || s.DocumentsCount != fit || s.Quotas.Storage.Used != fit*size {
			t.Fatalf("storage after the race: %+v", s)
		}
		d.noTemporaryBlobs(t)
		if files := d.blobs(t, "files/"); len(files) != fit {
			t.Fatalf("%d blobs stored, want %d", len(files), fit)
		}
	})
}

func TestDocumentsQuota(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		// The defaults for every tenant come from the configuration.
		d := newDocsEnv(t, shape, func(c *config.Config) { c.QuotaDocuments, c.QuotaStorageMB = ptr(3), ptr(1) })
		const n = 8
		statuses := make([]*apptest.Response, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				statuses[i] = d.upload(t, fmt.Sprintf("doc-%d.txt", i), []byte(fmt.Sprintf("document %d", i)))
			})
		}
		wg.Wait()
		created := 0
		for _, res := range statuses {
			if res.Status == http.StatusCreated {
				created++
			} else {
				res.Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")
			}
		}
		if created != 3 {
			t.Fatalf("%d documents created, want 3", created)
		}
		s := d.storage(t)
		if s.DocumentsCount != 3 || s.Quotas.Documents.Limit == nil || *s.Quotas.Documents.Limit != 3 || s.Quotas.Documents.Used != 3 ||
			s.Quotas.Storage.Limit == nil || *s.Quotas.Storage.Limit != 1<<20 {
			t.Fatalf("storage: %+v", s)
		}
		// A copy of a stored content is a document too.
		expectQuotaExceeded(t, d.upload(t, "copy.txt", []byte("document 0")), quota.Documents, 3, 3)
		d.noTemporaryBlobs(t)

		// An override lifts the default for this tenant alone.
		d.setQuotas(t, quota.Override{Kind: quota.Documents, Limit: ptr(4)})
		d.upload(t, "fourth.txt", []byte("fourth")).Expect(t, http.StatusCreated, "")
		expectQuotaExceeded(t, d.upload(t, "fifth.txt", []byte("fifth")), quota.Documents, 4, 4)
		other := d.CreateTenant(t, d.admin, "Other")
		for i := range 3 {
			d.Upload(t, d.admin, other, fmt.Sprintf("o%d.txt", i), []byte{byte(i)})
		}
		d.UploadParts(t, d.admin.AccessToken, other, apptest.Part{Name: "file", Filename: "o3.txt", Body: []byte("o3")}).
			Expect(t, http.StatusForbidden, "QUOTA_EXCEEDED")
	})
}

func TestMembersQuota(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		d.setQuotas(t, quota.Override{Kind: quota.Members, Limit: ptr(4)})
		candidates := make([]*apptest.User, 5)
		for i := range candidates {
			candidates[i] = d.Register(t, fmt.Sprintf("Candidate%d", i))
		}
		add := func(u *apptest.User) *apptest.Response {
			return d.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/tenants/" + d.tenantID + "/users", Token: d.admin.AccessToken,
				Body: map[string]string{"user_id": u.ID, "role": "viewer"}})
		}
		statuses := make([]*apptest.Response, len(candidates))
		var wg sync.WaitGroup
		for i, u := range candidates {
			wg.Go(func() { statuses[i] = add(u) })
		}
		wg.Wait()
		created := 0
		for _, res := range statuses {
			if res.Status == http.StatusCreated {
				created++
			} else {
				expectQuotaExceeded(t, res, quota.Members, 4, 4)
			}
		}
		if created != 1 {
			t.Fatalf("%d members added beside the 3 there, want 1", created)
		}
		// A member already there is still a conflict, not a quota matter.
		add(d.user).Expect(t, http.StatusConflict, "CONFLICT")
		if s := d.storage(t); s.Quotas.Members.Used != 4 || s.Quotas.Members.Limit == nil || *s.Quotas.Members.Limit != 4 {
			t.Fatalf("members quota: %+v", s.Quotas.Members)
		}
	})
}
