package api_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/config"
)

// docsEnv is a tenant with one member of each role.
type docsEnv struct {
	*apptest.Env
	admin, user, viewer, stranger *apptest.User
	tenantID, dbName              string
}

func newDocsEnv(t *testing.T, shape config.Shape, tune ...func(*config.Config)) *docsEnv {
	t.Helper()
	cfg := apptest.Config(t, shape)
	for _, f := range tune {
		f(&cfg)
	}
	env := apptest.Start(t, cfg)
	d := &docsEnv{Env: env, admin: env.SignUp(t, "Admin"), user: env.SignUp(t, "User"), viewer: env.SignUp(t, "Viewer"), stranger: env.SignUp(t, "Stranger")}
	d.tenantID = env.CreateTenant(t, d.admin, "Documents")
	env.AddMember(t, d.admin, d.tenantID, d.user, "user")
	env.AddMember(t, d.admin, d.tenantID, d.viewer, "viewer")
	var tn tenantJSON
	env.Get(t, "/api/tenants/"+d.tenantID, d.admin.AccessToken).Expect(t, 200, "").Data(t, &tn)
	d.dbName = tn.DatabaseName
	return d
}

func (d *docsEnv) docs() string { return "/api/tenants/" + d.tenantID + "/documents" }

// blobs lists the keys stored under the tenant's prefix plus sub.
func (d *docsEnv) blobs(t *testing.T, sub string) []string {
	t.Helper()
	var keys []string
	err := d.App.Blobs.List(context.Background(), "tenants/"+d.dbName+"/"+sub, func(i blob.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func sums(b []byte) (string, string) {
	s := sha256.Sum256(b)
	m := md5.Sum(b)
	return hex.EncodeToString(s[:]), hex.EncodeToString(m[:])
}

func TestUploadAndGet(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		content := []byte("%PDF-1.4 quarterly report")
		doc := d.Upload(t, d.user, d.tenantID, "report Q1.pdf", content)
		sha, md := sums(content)
		if doc.Filename != "report Q1.pdf" || doc.MimeType != "application/pdf" || doc.UserID != d.user.ID ||
			doc.File.SHA256 != sha || doc.File.MD5 != md || doc.File.FileSize != int64(len(content)) ||
			doc.File.S3Path != "tenants/"+d.dbName+"/files/"+sha[:2]+"/"+sha[2:4]+"/"+sha {
			t.Fatalf("uploaded = %+v", doc)
		}
		var got apptest.Document
		d.Get(t, d.docs()+"/"+doc.ID, d.viewer.AccessToken).Expect(t, 200, "").Data(t, &got)
		if got.ID != doc.ID || got.File.SHA256 != sha {
			t.Fatalf("get = %+v", got)
		}
		var storage struct {
			DocumentsCount int64 `json:"documents_count"`
			LogicalBytes   int64 `json:"logical_bytes"`
			PhysicalBytes  int64 `json:"physical_bytes"`
		}
		d.Get(t, "/api/tenants/"+d.tenantID+"/storage", d.viewer.AccessToken).Expect(t, 200, "").Data(t, &storage)
		if storage.DocumentsCount != 1 || storage.PhysicalBytes != int64(len(content)) {
			t.Fatalf("storage = %+v", storage)
		}
		if blobs := d.blobs(t, ""); len(blobs) != 1 {
			t.Fatalf("blobs = %v, want exactly the content's", blobs)
		}
		d.Get(t, d.docs()+"/0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", d.admin.AccessToken).Expect(t, 404, "NOT_FOUND")
		d.Get(t, d.docs()+"/nope", d.admin.AccessToken).Expect(t, 400, "BAD_REQUEST")
		d.Get(t, d.docs()+"/"+doc.ID, d.stranger.AccessToken).Expect(t, 404, "NOT_FOUND")
		d.Get(t, d.docs()+"/"+doc.ID, "").Expect(t, 401, "UNAUTHORIZED")
	})
}

func TestUploadChoosesNameAndTypeFromFieldsInAnyOrder(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		var doc apptest.Document
		d.UploadParts(t, d.user.AccessToken, d.tenantID,
			apptest.Part{Name: "file", Filename: "upload.bin", ContentType: "text/plain; charset=utf-8", Body: []byte("hello")},
			apptest.Part{Name: "filename", Body: []byte("  notes.txt ")},
		).Expect(t, 201, "").Data(t, &doc)
		if doc.Filename != "notes.txt" || doc.MimeType != "text/plain" {
			t.Fatalf("document = %+v", doc)
		}
		d.UploadParts(t, d.user.AccessToken, d.tenantID,
			apptest.Part{Name: "mime_type", Body: []byte("Application/JSON")},
			apptest.Part{Name: "file", Filename: "data", Body: []byte("{}")},
		).Expect(t, 201, "").Data(t, &doc)
		if doc.Filename != "data" || doc.MimeType != "application/json" {
			t.Fatalf("document = %+v", doc)
		}
	})
}

func TestUploadValidation(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape, func(c *config.Config) { c.MaxUploadMB = 1 })
		file := func(name string, body []byte) apptest.Part {
			return apptest.Part{Name: "file", Filename: name, Body: body}
		}
		for _, tt := range []struct {
			name   string
			parts  []apptest.Part
			status int
			code   string
		}{
			{"no file part", []apptest.Part{{Name: "filename", Body: []byte("x.txt")}}, 400, "VALIDATION_ERROR"},
			{"empty file", []apptest.Part{file("empty.txt", nil)}, 400, "VALIDATION_ERROR"},
			{"slash in the name", []apptest.Part{file("ok.txt", []byte("x")), {Name: "filename", Body: []byte("../../etc/passwd")}}, 400, "VALIDATION_ERROR"},
			{"backslash in the part name", []apptest.Part{file(`C:\\Users\\x.txt`, []byte("x"))}, 400, "VALIDATION_ERROR"},
			{"newline in the name", []apptest.Part{file("ok.txt", []byte("x")), {Name: "filename", Body: []byte("a\nb.txt")}}, 400, "VALIDATION_ERROR"},
			{"direction override in the name", []apptest.Part{file("ok.txt", []byte("x")), {Name: "filename", Body: []byte("invoice\u202Efdp.exe")}}, 400, "VALIDATION_ERROR"},
			{"no name at all", []apptest.Part{{Name: "file", Body: []byte("x")}}, 400, "VALIDATION_ERROR"},
			{"bad MIME type", []apptest.Part{file("ok.txt", []byte("x")), {Name: "mime_type", Body: []byte("text/plain; charset=utf-8")}}, 400, "VALIDATION_ERROR"},
			{"unknown field", []apptest.Part{file("ok.txt", []byte("x")), {Name: "owner", Body: []byte("me")}}, 400, "VALIDATION_ERROR"},
			{"two files", []apptest.Part{file("a.txt", []byte("a")), file("b.txt", []byte("b"))}, 400, "BAD_REQUEST"},
			{"over the limit", []apptest.Part{file("big.bin", make([]byte, 1<<20+1))}, 413, "PAYLOAD_TOO_LARGE"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				d.UploadParts(t, d.user.AccessToken, d.tenantID, tt.parts...).Expect(t, tt.status, tt.code)
			})
		}
		t.Run("exactly at the limit", func(t *testing.T) {
			d.UploadParts(t, d.user.AccessToken, d.tenantID, file("max.bin", bytes.Repeat([]byte{7}, 1<<20))).Expect(t, 201, "")
		})
		t.Run("not multipart", func(t *testing.T) {
			d.Do(t, apptest.Request{Method: "POST", Path: d.docs(), Token: d.user.AccessToken, Body: `{"file":"x"}`, ContentType: "application/json"}).
				Expect(t, 415, "UNSUPPORTED_MEDIA_TYPE")
		})
		t.Run("truncated multipart", func(t *testing.T) {
			body, ct := apptest.Multipart(t, file("cut.txt", bytes.Repeat([]byte("x"), 5000)))
			d.Do(t, apptest.Request{Method: "POST", Path: d.docs(), Token: d.user.AccessToken, Body: body[:len(body)/2], ContentType: ct}).
				Expect(t, 400, "BAD_REQUEST")
		})
		// Failed uploads leave no temporary blob and no row behind.
		if tmp := d.blobs(t, "tmp/"); len(tmp) != 0 {
			t.Fatalf("temporary blobs left: %v", tmp)
		}
		var list struct {
			Pagination struct {
				Total int `json:"total"`
			} `json:"pagination"`
		}
		d.Get(t, d.docs(), d.admin.AccessToken).Expect(t, 200, "").Data(t, &list)
		if list.Pagination.Total != 1 {
			t.Fatalf("%d documents, want only the one at the limit", list.Pagination.Total)
		}
	})
}

func TestConcurrentUploadsOfTheSameBytesShareOneFile(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		content := bytes.Repeat([]byte("same bytes "), 10000)
		var mu sync.Mutex
		fileIDs := map[string]int{}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				doc := d.Upload(t, d.user, d.tenantID, fmt.Sprintf("copy-%d.txt", i), content)
				mu.Lock()
				fileIDs[doc.FileID]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(fileIDs) != 1 {
			t.Fatalf("20 uploads of the same bytes made %d files", len(fileIDs))
		}
		if blobs := d.blobs(t, ""); len(blobs) != 1 {
			t.Fatalf("blobs = %v, want one", blobs)
		}
		var files struct {
			Files []struct {
				ID            string `json:"id"`
				DocumentCount int    `json:"document_count"`
			} `json:"files"`
			Stats struct {
				TotalFiles        int   `json:"total_files"`
				TotalStorageBytes int64 `json:"total_storage_bytes"`
			} `json:"stats"`
		}
		d.Get(t, "/api/tenants/"+d.tenantID+"/files?include_stats=true", d.admin.AccessToken).Expect(t, 200, "").Data(t, &files)
		if len(files.Files) != 1 || files.Files[0].DocumentCount != 20 || files.Stats.TotalFiles != 1 || files.Stats.TotalStorageBytes != int64(len(content)) {
			t.Fatalf("files = %+v", files)
		}
		var storage struct {
			DocumentsCount    int64   `json:"documents_count"`
			LogicalBytes      int64   `json:"logical_bytes"`
			DedupSavingsBytes int64   `json:"dedup_savings_bytes"`
			DedupRatio        float64 `json:"dedup_ratio"`
		}
		d.Get(t, "/api/tenants/"+d.tenantID+"/storage", d.admin.AccessToken).Expect(t, 200, "").Data(t, &storage)
		if storage.DocumentsCount != 20 || storage.LogicalBytes != 20*int64(len(content)) || storage.DedupSavingsBytes != 19*int64(len(content)) || storage.DedupRatio != 20 {
			t.Fatalf("storage = %+v", storage)
		}

		// Another tenant storing the same bytes gets a file and blob of its
		// own.
		other := d.CreateTenant(t, d.admin, "Other")
		doc := d.Upload(t, d.admin, other, "copy.txt", content)
		for id := range fileIDs {
			if doc.FileID == id {
				t.Fatal("two tenants share a file")
			}
		}
		if strings.Contains(doc.File.S3Path, d.dbName) {
			t.Fatalf("the other tenant's blob is under this tenant's prefix: %s", doc.File.S3Path)
		}
	})
}

func TestDocumentRoles(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		mine := d.Upload(t, d.user, d.tenantID, "mine.txt", []byte("mine"))
		admins := d.Upload(t, d.admin, d.tenantID, "admins.txt", []byte("admin's"))
		docPath := func(id string) string { return d.docs() + "/" + id }
		rename := func(name string) map[string]string { return map[string]string{"filename": name} }

		// Viewers read and download, nothing more.
		d.Get(t, d.docs(), d.viewer.AccessToken).Expect(t, 200, "")
		d.Get(t, docPath(mine.ID)+"/download", d.viewer.AccessToken).Expect(t, 200, "")
		d.UploadParts(t, d.viewer.AccessToken, d.tenantID, apptest.Part{Name: "file", Filename: "v.txt", Body: []byte("v")}).Expect(t, 403, "FORBIDDEN")
		d.Do(t, put(docPath(mine.ID), d.viewer.AccessToken, rename("x.txt"))).Expect(t, 403, "FORBIDDEN")
		d.Do(t, del(docPath(mine.ID), d.viewer.AccessToken)).Expect(t, 403, "FORBIDDEN")

		// Users change their own documents only.
		d.Do(t, put(docPath(admins.ID), d.user.AccessToken, rename("x.txt"))).Expect(t, 403, "FORBIDDEN")
		d.Do(t, del(docPath(admins.ID), d.user.AccessToken)).Expect(t, 403, "FORBIDDEN")
		d.Do(t, put(docPath(mine.ID), d.user.AccessToken, rename("mine-v2.txt"))).Expect(t, 200, "")
		d.Do(t, del(docPath(mine.ID), d.user.AccessToken)).Expect(t, 200, "")

		// Admins change anything; files are theirs alone to delete.
		other := d.Upload(t, d.user, d.tenantID, "other.txt", []byte("other"))
		d.Do(t, put(docPath(other.ID), d.admin.AccessToken, rename("renamed.txt"))).Expect(t, 200, "")
		d.Do(t, del(docPath(other.ID), d.admin.AccessToken)).Expect(t, 200, "")
		d.Do(t, del("/api/tenants/"+d.tenantID+"/files/"+other.FileID, d.user.AccessToken)).Expect(t, 403, "FORBIDDEN")

		// Strangers learn nothing.
		for _, req := range []apptest.Request{
			{Method: "GET", Path: d.docs()},
			{Method: "GET", Path: docPath(admins.ID) + "/download"},
			{Method: "GET", Path: docPath(admins.ID) + "/download-url"},
			{Method: "GET", Path: "/api/tenants/" + d.tenantID + "/files"},
			{Method: "GET", Path: "/api/tenants/" + d.tenantID + "/storage"},
			{Method: "DELETE", Path: docPath(admins.ID)},
		} {
			req.Token = d.stranger.AccessToken
			d.Do(t, req).Expect(t, 404, "NOT_FOUND")
		}
		d.UploadParts(t, d.stranger.AccessToken, d.tenantID, apptest.Part{Name: "file", Filename: "s.txt", Body: []byte("s")}).Expect(t, 404, "NOT_FOUND")
	})
}

func TestListDocuments(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		for i, name := range []string{"Alpha.txt", "beta.TXT", "100%_done.txt", "100x-done.txt", "gamma.pdf"} {
			d.Upload(t, d.user, d.tenantID, name, []byte(fmt.Sprintf("content %d", i)))
		}
		type listing struct {
			Documents []struct {
				Filename string `json:"filename"`
			} `json:"documents"`
			Pagination struct {
				Page    int `json:"page"`
				PerPage int `json:"per_page"`
				Total   int `json:"total"`
				Pages   int `json:"pages"`
			} `json:"pagination"`
		}
		list := func(query string) listing {
			var l listing
			d.Get(t, d.docs()+query, d.viewer.AccessToken).Expect(t, 200, "").Data(t, &l)
			return l
		}
		names := func(l listing) string {
			var n []string
			for _, doc := range l.Documents {
				n = append(n, doc.Filename)
			}
			return strings.Join(n, ",")
		}
		if l := list(""); l.Pagination.Total != 5 || names(l) != "gamma.pdf,100x-done.txt,100%_done.txt,beta.TXT,Alpha.txt" {
			t.Fatalf("default listing: %s %+v", names(l), l.Pagination)
		}
		if l := list("?page=2&per_page=2"); names(l) != "100%_done.txt,beta.TXT" || l.Pagination.Pages != 3 || l.Pagination.Page != 2 || l.Pagination.PerPage != 2 {
			t.Fatalf("page 2: %s %+v", names(l), l.Pagination)
		}
		if l := list("?page=9"); len(l.Documents) != 0 || l.Pagination.Total != 5 {
			t.Fatalf("past the end: %+v", l)
		}
		if l := list("?filename=TXT&sort=filename"); names(l) != "100%_done.txt,100x-done.txt,Alpha.txt,beta.TXT" {
			t.Fatalf("filter txt: %s", names(l))
		}
		if l := list("?filename=" + "%25_"); names(l) != "100%_done.txt" || l.Pagination.Total != 1 {
			t.Fatalf("%%_ must match literally: %s", names(l))
		}
		if l := list("?filename=x_&sort=-filename"); names(l) != "" {
			t.Fatalf("_ must not match any character: %s", names(l))
		}
		if l := list("?sort=created_at&per_page=1"); names(l) != "Alpha.txt" {
			t.Fatalf("oldest first: %s", names(l))
		}
		for _, bad := range []string{"?page=0", "?page=-1", "?per_page=0", "?per_page=101", "?page=x", "?sort=size"} {
			d.Get(t, d.docs()+bad, d.viewer.AccessToken).Expect(t, 400, "BAD_REQUEST")
		}
	})
}

func TestUpdateDocument(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		doc := d.Upload(t, d.user, d.tenantID, "draft.txt", []byte("draft"))
		path := d.docs() + "/" + doc.ID
		var got apptest.Document
		d.Do(t, put(path, d.user.AccessToken, map[string]string{"filename": " final.md ", "mime_type": "Text/Markdown"})).Expect(t, 200, "").Data(t, &got)
		if got.Filename != "final.md" || got.MimeType != "text/markdown" || got.FileID != doc.FileID {
			t.Fatalf("updated = %+v", got)
		}
		d.Do(t, put(path, d.user.AccessToken, map[string]string{})).Expect(t, 400, "BAD_REQUEST")
		d.Do(t, put(path, d.user.AccessToken, map[string]string{"filename": "a/b"})).Expect(t, 400, "VALIDATION_ERROR")
		d.Do(t, put(path, d.user.AccessToken, map[string]string{"mime_type": "nonsense"})).Expect(t, 400, "VALIDATION_ERROR")
		d.Do(t, put(path, d.user.AccessToken, map[string]string{"file_id": doc.FileID})).Expect(t, 400, "VALIDATION_ERROR")
		d.Do(t, put(d.docs()+"/0b7e3b8e-5f7a-4c1e-9a57-3b7c2c0c9a11", d.admin.AccessToken, map[string]string{"filename": "x"})).Expect(t, 404, "NOT_FOUND")
	})
}

func TestDeleteDocumentsAndFiles(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		first := d.Upload(t, d.user, d.tenantID, "one.txt", []byte("shared"))
		second := d.Upload(t, d.user, d.tenantID, "two.txt", []byte("shared"))
		filePath := "/api/tenants/" + d.tenantID + "/files/" + first.FileID

		var deleted struct {
			DeletedDocumentID string `json:"deleted_document_id"`
			FileOrphaned      bool   `json:"file_orphaned"`
		}
		d.Do(t, del(d.docs()+"/"+first.ID, d.user.AccessToken)).Expect(t, 200, "").Data(t, &deleted)
		if deleted.DeletedDocumentID != first.ID || deleted.FileOrphaned {
			t.Fatalf("first delete = %+v", deleted)
		}
		d.Get(t, d.docs()+"/"+first.ID, d.user.AccessToken).Expect(t, 404, "NOT_FOUND")
		d.Do(t, del(d.docs()+"/"+first.ID, d.user.AccessToken)).Expect(t, 404, "NOT_FOUND")
		d.Do(t, del(filePath, d.admin.AccessToken)).Expect(t, 409, "CONFLICT")

		d.Do(t, del(d.docs()+"/"+second.ID, d.user.AccessToken)).Expect(t, 200, "").Data(t, &deleted)
		if !deleted.FileOrphaned {
			t.Fatal("the last document's file is not reported orphaned")
		}
		var file struct {
			IsOrphaned bool `json:"is_orphaned"`
			Documents  []any
		}
		d.Get(t, filePath, d.viewer.AccessToken).Expect(t, 200, "").Data(t, &file)
		if !file.IsOrphaned || len(file.Documents) != 0 {
			t.Fatalf("file = %+v", file)
		}
		var freed struct {
			FileID            string `json:"file_id"`
			FreedStorageBytes int64  `json:"freed_storage_bytes"`
			ContentRemoved    bool   `json:"content_removed"`
		}
		d.Do(t, del(filePath, d.admin.AccessToken)).Expect(t, 200, "").Data(t, &freed)
		// The content was promoted moments ago, within the grace period
		// an upload may still need: the reconciler takes it later.
		if freed.FileID != first.FileID || freed.FreedStorageBytes != 6 || freed.ContentRemoved {
			t.Fatalf("file delete = %+v", freed)
		}
		d.Get(t, filePath, d.admin.AccessToken).Expect(t, 404, "NOT_FOUND")
		d.Do(t, del(filePath, d.admin.AccessToken)).Expect(t, 404, "NOT_FOUND")
	})
}

func TestFilesAlias(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		doc := d.Upload(t, d.user, d.tenantID, "a.txt", []byte("alias"))
		var files struct {
			Files []struct {
				ID string `json:"id"`
			} `json:"files"`
		}
		d.Get(t, "/api/files/"+d.tenantID+"/files", d.viewer.AccessToken).Expect(t, 200, "").Data(t, &files)
		if len(files.Files) != 1 || files.Files[0].ID != doc.FileID {
			t.Fatalf("alias listing = %+v", files)
		}
		d.Get(t, "/api/files/"+d.tenantID+"/files/"+doc.FileID, d.viewer.AccessToken).Expect(t, 200, "")
		d.Do(t, del("/api/files/"+d.tenantID+"/files/"+doc.FileID, d.admin.AccessToken)).Expect(t, 409, "CONFLICT")
		d.Get(t, "/api/files/"+d.tenantID+"/files?per_page=0", d.viewer.AccessToken).Expect(t, 400, "BAD_REQUEST")
	})
}

func TestContentDispositionSurvivesAnyName(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		d := newDocsEnv(t, shape)
		for _, name := range []string{`naïve "résumé".pdf`, `quote"; filename="evil.exe`, "日本語.txt", `back\slash`[:4] + ".txt", "semi;colon,comma.txt", "  spaced out  "} {
			var doc apptest.Document
			d.UploadParts(t, d.user.AccessToken, d.tenantID,
				apptest.Part{Name: "file", Filename: "x.bin", Body: []byte(name)},
				apptest.Part{Name: "filename", Body: []byte(name)},
			).Expect(t, 201, "").Data(t, &doc)
			res := d.Get(t, d.docs()+"/"+doc.ID+"/download", d.viewer.AccessToken).Expect(t, 200, "")
			_, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition"))
			if err != nil || params["filename"] != doc.Filename {
				t.Errorf("%q: Content-Disposition %q parses to %v, %v", name, res.Header.Get("Content-Disposition"), params, err)
			}
		}
	})
}
