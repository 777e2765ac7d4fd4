package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/sqlite"
)

// cursorDepth is the page the cursor benchmark reads deep in the listing:
// with 20 per page, 49,980 documents before it, half of listedDocuments.
const cursorDepth = 2500

// BenchmarkListDocumentsByCursor measures GET /api/tenants/{id}/documents,
// 20 per page, newest first, on a tenant holding 100,000 documents (seeded
// as in BenchmarkListDocuments), for the first page and for page 2500
// reached by cursor: the next_cursor of page 2499, which seeks to where
// that page ended instead of stepping over 49,980 rows. In the same run,
// PocketBase serves the same 100,000 records, 20 per page, newest first,
// for its first page and its page 2500 (its only way there is the page
// number), under the same closed-loop load of loadClients Go clients. The
// figures to compare are each server's page 2500 against its own page 1,
// and tenantry's page 2500 by cursor against PocketBase's page 2500.
//
// PocketBase gets what makes its listing fast: a records collection with
// an index on its creation time, filled by rows written straight into its
// SQLite database (100,000 records through its API would take most of an
// hour), and a signed-in user its list rule admits.
//
// It is a fixed-duration measurement that ignores b.N: run it with
// -benchtime 1x.
func BenchmarkListDocumentsByCursor(b *testing.B) {
	bin := buildTenantry(b)
	eachShape(b, func(b *testing.B, shape config.Shape) {
		c := startChild(b, bin, shape)
		a := c.signUp(b, "Reader")
		t := c.createTenant(b, a, "Archive")
		seedDocuments(b, c, shape, t, a.id, listedDocuments)

		path := "/api/tenants/" + t.ID + "/documents"
		type page struct {
			Documents  []struct{ ID string } `json:"documents"`
			Pagination struct {
				Page       int     `json:"page"`
				Total      int64   `json:"total"`
				NextCursor *string `json:"next_cursor"`
			} `json:"pagination"`
		}
		var before, byOffset, byCursor page
		c.call(b, http.MethodGet, path+"?page="+strconv.Itoa(cursorDepth-1), a.token, nil, http.StatusOK, &before)
		if before.Pagination.NextCursor == nil {
			b.Fatalf("page %d has no next cursor", cursorDepth-1)
		}
		cursor := "?cursor=" + url.QueryEscape(*before.Pagination.NextCursor)
		c.call(b, http.MethodGet, path+"?page="+strconv.Itoa(cursorDepth), a.token, nil, http.StatusOK, &byOffset)
		c.call(b, http.MethodGet, path+cursor, a.token, nil, http.StatusOK, &byCursor)
		if byCursor.Pagination.Page != cursorDepth || byCursor.Pagination.Total != listedDocuments ||
			len(byCursor.Documents) != 20 || fmt.Sprint(byCursor.Documents) != fmt.Sprint(byOffset.Documents) {
			b.Fatalf("page %d by cursor is not page %d by number", byCursor.Pagination.Page, cursorDepth)
		}
		c.waitIdle(b)
		auth := "Bearer " + a.token
		for _, q := range []struct{ name, query string }{
			{"page=1", ""},
			{"page=" + strconv.Itoa(cursorDepth) + "/by=cursor", cursor},
		} {
			b.Run(q.name+"/clients="+strconv.Itoa(loadClients), func(b *testing.B) {
				var r loadResult
				cores := c.cores(b, func() {
					r = driveLoad(b, loadClients, func() *http.Request {
						req, _ := http.NewRequest(http.MethodGet, c.url+path+q.query, nil)
						req.Header.Set("Authorization", auth)
						return req
					})
				})
				reportLoad(b, r)
				b.ReportMetric(cores, "server-cores")
			})
		}
	})

	b.Run("pocketbase", func(b *testing.B) {
		pb := startPocketBase(b, pocketBaseBinary(b))
		pb.seedRecords(b, listedDocuments)
		path := "/api/collections/documents/records?perPage=20&sort=-created"
		var first struct {
			Page       int   `json:"page"`
			TotalItems int64 `json:"totalItems"`
			Items      []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		pb.send(b, http.MethodGet, path+"&page="+strconv.Itoa(cursorDepth), pb.token, nil, &first)
		if first.TotalItems != listedDocuments || len(first.Items) != 20 || first.Page != cursorDepth {
			b.Fatalf("PocketBase's page %d lists %d records of %d", first.Page, len(first.Items), first.TotalItems)
		}
		pb.waitIdle(b)
		// PocketBase counts the matching records on every page unless
		// told not to (skipTotal, which leaves totalItems at -1): its
		// default is measured, and its fastest deep page beside it.
		for _, q := range []struct{ name, query string }{
			{"page=1", "&page=1"},
			{"page=" + strconv.Itoa(cursorDepth), "&page=" + strconv.Itoa(cursorDepth)},
			{"page=" + strconv.Itoa(cursorDepth) + "/skipTotal", "&page=" + strconv.Itoa(cursorDepth) + "&skipTotal=1"},
		} {
			b.Run(q.name+"/clients="+strconv.Itoa(loadClients), func(b *testing.B) {
				var r loadResult
				cores := pb.cores(b, func() {
					r = driveLoad(b, loadClients, func() *http.Request {
						req, _ := http.NewRequest(http.MethodGet, pb.url+path+q.query, nil)
						req.Header.Set("Authorization", pb.token)
						return req
					})
				})
				reportLoad(b, r)
				b.ReportMetric(cores, "server-cores")
			})
		}
	})
}

// seedRecords creates PocketBase's "documents" collection (a filename, a
// MIME type and PocketBase's created and updated times, with an index on
// the creation time) and writes n records straight into its database, one
// second apart in creation time, the newest now, as seedDocuments does for
// tenantry.
func (pb *pocketBase) seedRecords(b *testing.B, n int) {
	b.Helper()
	var admin struct {
		Token string `json:"token"`
	}
	pb.send(b, http.MethodPost, "/api/collections/_superusers/auth-with-password", "",
		map[string]string{"identity": pocketBaseAdmin, "password": pocketBaseAdminPassword}, &admin)
	signedIn := `@request.auth.id != ""`
	pb.send(b, http.MethodPost, "/api/collections", admin.Token, map[string]any{
		"name": "documents", "type": "base", "listRule": signedIn, "viewRule": signedIn,
		"fields": []map[string]any{
			{"name": "filename", "type": "text"},
			{"name": "mime_type", "type": "text"},
			{"name": "created", "type": "autodate", "onCreate": true},
			{"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true},
		},
		"indexes": []string{"CREATE INDEX idx_documents_created ON documents (created)"},
	}, nil)

	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(pb.dataDir, "data.db"), sqlite.Options{MustExist: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	newest := time.Now().UTC()
	// PocketBase's own id alphabet and length, and its stored time format.
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	const layout = "2006-01-02 15:04:05.000Z"
	id := make([]byte, 15)
	for txFirst := 0; txFirst < n; txFirst += seedTxRows {
		err := db.InTx(ctx, func(tx sqldb.Tx) error {
			for first := txFirst; first < min(txFirst+seedTxRows, n); first += seedBatch {
				var rows strings.Builder
				var args []any
				for i := first; i < min(first+seedBatch, txFirst+seedTxRows, n); i++ {
					_, _ = rand.Read(id)
					for j := range id {
						id[j] = alphabet[int(id[j])%len(alphabet)]
					}
					created := newest.Add(-time.Duration(n-1-i) * time.Second).Format(layout)
					filename := fmt.Sprintf("Report %06d.pdf", i)
					if i > first {
						rows.WriteString(", ")
					}
					rows.WriteString(tuple(len(args), "$", "$", "$", "$", "$"))
					args = append(args, string(id), filename, "application/pdf", created, created)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO documents (id, filename, mime_type, created, updated) VALUES `+rows.String(), args...); err != nil {
					return fmt.Errorf("insert records: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("seeding PocketBase records: %v", err)
		}
	}
	b.Logf("seeded %d PocketBase records in %s", n, time.Since(start).Round(time.Millisecond))
}
