package document

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// File is one distinct content stored for a tenant.
type File struct {
	ID            string
	SHA256        string
	MD5           string
	Size          int64
	StorageKey    string
	Metadata      json.RawMessage
	DocumentCount int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CreatedBy     string
}

// Document is a named reference to a file, owned by the user who uploaded
// it.
type Document struct {
	ID        string
	Filename  string
	MimeType  string
	FileID    string
	UserID    string
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy string
	// TimestampStatus is the trusted time-stamp status of the document's
	// file: none, pending, stamped or failed.
	TimestampStatus string
	// File is set where the document is returned with its content's
	// description.
	File *File
}

// fileColumns and documentColumns are the select lists fileDest and
// documentDest scan.
func fileColumns(d sqldb.Dialect) string {
	return `f.id, f.sha256_hash, f.md5_hash, f.file_size, f.storage_key, f.file_metadata, f.document_count, ` +
		d.Time("f.created_at") + `, ` + d.Time("f.updated_at") + `, COALESCE(CAST(f.created_by AS TEXT), '')`
}

// documentColumns reads the time-stamp status through documentStamp.
func documentColumns(d sqldb.Dialect) string {
	return `d.id, d.filename, d.mime_type, d.file_id, d.user_id, ` +
		d.Time("d.created_at") + `, ` + d.Time("d.updated_at") + `, COALESCE(CAST(d.created_by AS TEXT), ''), ` +
		`COALESCE(ts.status, 'none')`
}

// documentStamp joins documents d to their files' time-stamp status, which
// documentColumns selects. A join rather than a subquery in the select
// list: until a tenant's tables have statistics, PostgreSQL never settles
// on a generic plan for a prepared listing with such a subquery and plans
// it again on every execution (0.12 ms each, more than the query itself),
// while the join's plan is reused after five executions.
const documentStamp = ` LEFT JOIN file_timestamps ts ON ts.file_id = d.file_id `

func fileDest(f *File, meta *string) []any {
	return []any{&f.ID, &f.SHA256, &f.MD5, &f.Size, &f.StorageKey, meta, &f.DocumentCount,
		sqldb.ScanTime(&f.CreatedAt), sqldb.ScanTime(&f.UpdatedAt), &f.CreatedBy}
}

func documentDest(d *Document) []any {
	return []any{&d.ID, &d.Filename, &d.MimeType, &d.FileID, &d.UserID,
		sqldb.ScanTime(&d.CreatedAt), sqldb.ScanTime(&d.UpdatedAt), &d.CreatedBy, &d.TimestampStatus}
}

// timestampConditions are the conditions of the timestamp_status filter,
// by status; the values are fixed, so they are written into the
// statement.
var timestampConditions = map[string]string{ //nolint:gochecknoglobals // read-only table
	"none":    `NOT EXISTS (SELECT 1 FROM file_timestamps t WHERE t.file_id = d.file_id)`,
	"pending": `EXISTS (SELECT 1 FROM file_timestamps t WHERE t.file_id = d.file_id AND t.status = 'pending')`,
	"stamped": `EXISTS (SELECT 1 FROM file_timestamps t WHERE t.file_id = d.file_id AND t.status = 'stamped')`,
	"failed":  `EXISTS (SELECT 1 FROM file_timestamps t WHERE t.file_id = d.file_id AND t.status = 'failed')`,
}

// ValidTimestampStatus reports whether s is a timestamp_status filter.
func ValidTimestampStatus(s string) bool { _, ok := timestampConditions[s]; return ok }

func scanFile(row sqldb.Row) (*File, error) {
	var f File
	var meta string
	if err := row.Scan(fileDest(&f, &meta)...); err != nil {
		return nil, err
	}
	f.Metadata = json.RawMessage(meta)
	return &f, nil
}

var (
	errDocumentNotFound = tenantry.Errorf(tenantry.ENotFound, "Document not found")
	errFileNotFound     = tenantry.Errorf(tenantry.ENotFound, "File not found")
)

// insertFile records a new content unless a file with the same SHA-256
// exists; the unique index, not a prior lookup, decides between concurrent
// uploads. It reports whether this call inserted the row.
func insertFile(ctx context.Context, q sqldb.Querier, f *File) (bool, error) {
	n, err := q.Exec(ctx, `
		INSERT INTO files (id, sha256_hash, md5_hash, file_size, storage_key, file_metadata, document_count, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)
		ON CONFLICT (sha256_hash) DO NOTHING`,
		f.ID, f.SHA256, f.MD5, f.Size, f.StorageKey, "{}", f.CreatedAt, f.UpdatedAt, nullable(f.CreatedBy))
	return n == 1, err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func findFileBySHA(ctx context.Context, q sqldb.Querier, sha string) (*File, error) {
	return scanFile(q.QueryRow(ctx, `SELECT `+fileColumns(q.Dialect())+` FROM files f WHERE f.sha256_hash = $1`, sha))
}

func findFile(ctx context.Context, q sqldb.Querier, id string) (*File, error) {
	f, err := scanFile(q.QueryRow(ctx, `SELECT `+fileColumns(q.Dialect())+` FROM files f WHERE f.id = $1`, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errFileNotFound
	}
	return f, err
}

// addReferences changes a file's document count by delta and returns the
// new count.
func addReferences(ctx context.Context, q sqldb.Querier, fileID string, delta int, now time.Time) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `
		UPDATE files SET document_count = document_count + $2, updated_at = $3
		WHERE id = $1 RETURNING document_count`, fileID, delta, now).Scan(&n)
	return n, err
}

// counterDelta is a change to the running totals of a tenant. The quota
// totals follow the physical bytes and documents, plus the change to what
// uploads in progress hold reserved.
type counterDelta struct {
	documents, logicalBytes, files, physicalBytes int64
	reservedBytes, reservedDocuments              int64
}

func addCounters(ctx context.Context, q sqldb.Querier, d counterDelta) error {
	_, err := q.Exec(ctx, `
		UPDATE counters SET value = value + CASE name
			WHEN 'documents' THEN CAST($1 AS BIGINT)
			WHEN 'logical_bytes' THEN CAST($2 AS BIGINT)
			WHEN 'files' THEN CAST($3 AS BIGINT)
			WHEN 'physical_bytes' THEN CAST($4 AS BIGINT)
			WHEN 'quota_bytes' THEN CAST($5 AS BIGINT)
			WHEN 'quota_documents' THEN CAST($6 AS BIGINT)
			ELSE 0 END`,
		d.documents, d.logicalBytes, d.files, d.physicalBytes,
		d.physicalBytes+d.reservedBytes, d.documents+d.reservedDocuments)
	return err
}

// reserveQuota adds bytes and one document to the quota totals if that
// keeps each within its limit (a negative limit is none), and reports which
// rows it changed. One statement over the whole table, like addCounters,
// so that the transactions touching the totals take their row locks in the
// same order; on PostgreSQL a row another upload changed meanwhile is
// checked again against its committed value before it is changed.
func reserveQuota(ctx context.Context, q sqldb.Querier, bytes, bytesLimit, documentsLimit int64) (bytesOK, documentsOK bool, err error) {
	rows, err := q.Query(ctx, `
		UPDATE counters SET value = value + CASE name WHEN 'quota_bytes' THEN CAST($1 AS BIGINT) ELSE 1 END
		WHERE CASE name
			WHEN 'quota_bytes' THEN CAST($2 AS BIGINT) < 0 OR value + CAST($1 AS BIGINT) <= CAST($2 AS BIGINT)
			WHEN 'quota_documents' THEN CAST($3 AS BIGINT) < 0 OR value + 1 <= CAST($3 AS BIGINT)
			ELSE 1 = 0 END
		RETURNING name`, bytes, bytesLimit, documentsLimit)
	if err != nil {
		return false, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return false, false, err
		}
		bytesOK = bytesOK || name == "quota_bytes"
		documentsOK = documentsOK || name == "quota_documents"
	}
	return bytesOK, documentsOK, rows.Err()
}

func insertReservation(ctx context.Context, q sqldb.Querier, id string, bytes int64, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO upload_reservations (id, bytes, documents, created_at) VALUES ($1, $2, 1, $3)`, id, bytes, at)
	return err
}

// deleteReservation removes a reservation and reports whether it was still
// there: one the reconciler gave back after its upload seemed dead must not
// be given back twice.
func deleteReservation(ctx context.Context, q sqldb.Querier, id string) (bool, error) {
	n, err := q.Exec(ctx, `DELETE FROM upload_reservations WHERE id = $1`, id)
	return n == 1, err
}

// expireReservations removes the reservations made before cutoff and
// returns what they held.
func expireReservations(ctx context.Context, q sqldb.Querier, cutoff time.Time) (bytes, documents int64, err error) {
	rows, err := q.Query(ctx, `DELETE FROM upload_reservations WHERE created_at < $1 RETURNING bytes, documents`, cutoff)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var b, d int64
		if err := rows.Scan(&b, &d); err != nil {
			return 0, 0, err
		}
		bytes, documents = bytes+b, documents+d
	}
	return bytes, documents, rows.Err()
}

func fileExistsWithSHA(ctx context.Context, q sqldb.Querier, sha string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM files WHERE sha256_hash = $1`, sha).Scan(&n)
	return n > 0, err
}

// Usage is a tenant's storage totals.
type Usage struct {
	Documents     int64
	Files         int64
	LogicalBytes  int64
	PhysicalBytes int64
	// QuotaBytes and QuotaDocuments are what the quotas are checked
	// against: the physical bytes and the documents, plus what uploads in
	// progress hold reserved.
	QuotaBytes     int64
	QuotaDocuments int64
}

func readCounters(ctx context.Context, q sqldb.Querier) (Usage, error) {
	rows, err := q.Query(ctx, `SELECT name, value FROM counters`)
	if err != nil {
		return Usage{}, err
	}
	defer rows.Close()
	var u Usage
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return Usage{}, err
		}
		switch name {
		case "documents":
			u.Documents = v
		case "files":
			u.Files = v
		case "logical_bytes":
			u.LogicalBytes = v
		case "physical_bytes":
			u.PhysicalBytes = v
		case "quota_bytes":
			u.QuotaBytes = v
		case "quota_documents":
			u.QuotaDocuments = v
		}
	}
	return u, rows.Err()
}

func insertDocument(ctx context.Context, q sqldb.Querier, d *Document) error {
	_, err := q.Exec(ctx, `
		INSERT INTO documents (id, filename, filename_key, mime_type, file_id, user_id, created_at, updated_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.Filename, strings.ToLower(d.Filename), d.MimeType, d.FileID, d.UserID, d.CreatedAt, d.UpdatedAt, nullable(d.CreatedBy))
	return err
}

// findDocument returns a document with its file.
func findDocument(ctx context.Context, q sqldb.Querier, id string) (*Document, error) {
	var d Document
	var f File
	var meta string
	dest := append(documentDest(&d), fileDest(&f, &meta)...)
	err := q.QueryRow(ctx, `
		SELECT `+documentColumns(q.Dialect())+`, `+fileColumns(q.Dialect())+`
		FROM documents d JOIN files f ON f.id = d.file_id`+documentStamp+`
		WHERE d.id = $1`, id).Scan(dest...)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, errDocumentNotFound
	} else if err != nil {
		return nil, err
	}
	f.Metadata = json.RawMessage(meta)
	d.File = &f
	return &d, nil
}

// Listing is a page of documents and how many match in all.
type Listing struct {
	Documents []Document
	// Total is how many documents match, or -1 when the listing continued
	// a walk and did not count them.
	Total int64
	// Next is where the following page starts, nil on the last page.
	Next *Seek
}

// Seek is a position in a listing: the sort key and id of the row the
// next page starts after. The key is text: a timestamp in sqldb.TimeLayout
// for orders by time, the case-folded filename for orders by name.
type Seek struct {
	Key string
	ID  string
}

// sortOrder is an order a listing may ask for: a column, then the id to
// break ties, both in one direction, so that one index on (column, id)
// serves the order and the seek to any position in it.
type sortOrder struct {
	column string
	desc   bool
}

// byTime reports whether the order's key is a timestamp.
func (o sortOrder) byTime() bool { return strings.HasSuffix(o.column, "created_at") }

func (o sortOrder) orderBy(idColumn string) string {
	dir := " ASC"
	if o.desc {
		dir = " DESC"
	}
	return o.column + dir + ", " + idColumn + dir
}

// seekAfter is the condition that keeps the rows after a position, with
// its parameters numbered from n. It compares row values, which both
// engines match against the (column, id) index as one range.
func (o sortOrder) seekAfter(idColumn string, n int) string {
	op := " > "
	if o.desc {
		op = " < "
	}
	return "(" + o.column + ", " + idColumn + ")" + op + "($" + strconv.Itoa(n) + ", $" + strconv.Itoa(n+1) + ")"
}

// seekArgs returns the parameters of seekAfter for s, or a BAD_REQUEST
// error when s's key cannot be a key of this order.
func (o sortOrder) seekArgs(s *Seek) ([]any, error) {
	if !o.byTime() {
		return []any{s.Key, s.ID}, nil
	}
	t, err := time.Parse(sqldb.TimeLayout, s.Key)
	if err != nil {
		return nil, errBadSeek
	}
	return []any{t, s.ID}, nil
}

// seekKey is the key of a row in the order's text form.
func (o sortOrder) seekKey(createdAt time.Time, filenameKey string) string {
	if o.byTime() {
		return createdAt.UTC().Format(sqldb.TimeLayout)
	}
	return filenameKey
}

var errBadSeek = tenantry.Errorf(tenantry.EBadRequest, "Invalid cursor")

// sortOrders are the orders a listing may ask for, by name.
var sortOrders = map[string]sortOrder{ //nolint:gochecknoglobals // read-only table
	"-created_at": {"d.created_at", true},
	"created_at":  {"d.created_at", false},
	"-filename":   {"d.filename_key", true},
	"filename":    {"d.filename_key", false},
}

// likeEscaper makes % and _ literal in a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`) //nolint:gochecknoglobals // stateless

// documentsQuery selects up to limit documents in order, with the sort
// key when it is not a column documentDest reads, and the documents
// counter unless filtered. Its parameters are the offset, then the
// filename pattern when filtered, then the position to seek after when
// seeking.
func documentsQuery(d sqldb.Dialect, order sortOrder, filtered bool, status string, seek bool, limit int) string {
	columns := documentColumns(d)
	if !order.byTime() {
		columns += `, d.filename_key`
	}
	var conds []string
	n := 2
	if filtered {
		conds = append(conds, `d.filename_key LIKE $2 ESCAPE '\'`)
		n++
	}
	if status != "" {
		conds = append(conds, timestampConditions[status])
	} else if !filtered {
		columns += `, (SELECT value FROM counters WHERE name = 'documents')`
	}
	if seek {
		conds = append(conds, order.seekAfter("d.id", n))
	}
	where := ""
	if len(conds) > 0 {
		where = "WHERE " + strings.Join(conds, " AND ")
	}
	return `SELECT ` + columns + ` FROM documents d` + documentStamp + where + `
		ORDER BY ` + order.orderBy("d.id") + ` ` + sqldb.Limit(limit) + ` OFFSET $1`
}

// listDocuments returns a page of documents: the first limit after the
// position after, or after offset rows when after is nil. Without a
// filename filter the total is the documents counter, read by the listing
// statement itself: one statement instead of two on the busiest read, and
// the page and its total come from one snapshot. A page past the end has no
// row to carry the total, so it is read on its own. A filtered page that
// continues a walk (after set) counts nothing, since counting the matches
// reads every row: its caller carries the total counted when the walk
// began.
func listDocuments(ctx context.Context, q sqldb.Querier, filename, status, sort string, limit, offset int, after *Seek) (*Listing, error) {
	order, ok := sortOrders[sort]
	if !ok {
		order = sortOrders["-created_at"]
	}
	// One row more than the page says whether another page follows.
	l := &Listing{Documents: make([]Document, 0, limit+1), Total: -1}
	var d Document
	var filenameKey string
	dest := documentDest(&d)
	args := []any{offset}
	if !order.byTime() {
		dest = append(dest, &filenameKey)
	}
	unfiltered := filename == "" && status == ""
	if unfiltered {
		dest = append(dest, &l.Total)
	} else if filename != "" {
		args = append(args, likePattern(filename))
	}
	if after != nil {
		seek, err := order.seekArgs(after)
		if err != nil {
			return nil, err
		}
		args = append(args, seek...)
	}
	rows, err := q.Query(ctx, documentsQuery(q.Dialect(), order, filename != "", status, after != nil, limit+1), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var lastKey string
	for rows.Next() {
		d = Document{}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if len(l.Documents) == limit {
			l.Next = &Seek{Key: lastKey, ID: l.Documents[limit-1].ID}
			break
		}
		l.Documents = append(l.Documents, d)
		lastKey = order.seekKey(d.CreatedAt, filenameKey)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if l.Total < 0 && (unfiltered || after == nil) {
		if l.Total, err = countDocuments(ctx, q, filename, status); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func countDocuments(ctx context.Context, q sqldb.Querier, filename, status string) (int64, error) {
	if filename == "" && status == "" {
		u, err := readCounters(ctx, q)
		return u.Documents, err
	}
	var conds []string
	var args []any
	if filename != "" {
		conds = append(conds, `d.filename_key LIKE $1 ESCAPE '\'`)
		args = append(args, likePattern(filename))
	}
	if status != "" {
		conds = append(conds, timestampConditions[status])
	}
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM documents d WHERE `+strings.Join(conds, " AND "), args...).Scan(&n)
	return n, err
}

// likePattern matches filenames containing filename, case-insensitively,
// with its % and _ taken literally.
func likePattern(filename string) string {
	return "%" + likeEscaper.Replace(strings.ToLower(filename)) + "%"
}

func updateDocument(ctx context.Context, q sqldb.Querier, id string, filename, mimeType *string, now time.Time) error {
	var key *string
	if filename != nil {
		k := strings.ToLower(*filename)
		key = &k
	}
	_, err := q.Exec(ctx, `
		UPDATE documents SET filename = COALESCE($2, filename), filename_key = COALESCE($3, filename_key),
			mime_type = COALESCE($4, mime_type), updated_at = $5
		WHERE id = $1`, id, filename, key, mimeType, now)
	return err
}

func deleteDocument(ctx context.Context, q sqldb.Querier, id string) (bool, error) {
	n, err := q.Exec(ctx, `DELETE FROM documents WHERE id = $1`, id)
	return n == 1, err
}

// filesOrder is the one order of the files listing, newest first.
var filesOrder = sortOrder{"f.created_at", true} //nolint:gochecknoglobals // read-only

// filesQuery selects up to limit files, newest first. Its parameters are
// the offset, then the position to seek after when seeking.
func filesQuery(d sqldb.Dialect, seek bool, limit int) string {
	where := ""
	if seek {
		where = "WHERE " + filesOrder.seekAfter("f.id", 2)
	}
	return `SELECT ` + fileColumns(d) + ` FROM files f ` + where + `
		ORDER BY ` + filesOrder.orderBy("f.id") + ` ` + sqldb.Limit(limit) + ` OFFSET $1`
}

// listFiles returns the first limit files after the position after, or
// after offset files when after is nil, and where the next page starts (nil
// on the last page).
func listFiles(ctx context.Context, q sqldb.Querier, limit, offset int, after *Seek) ([]File, *Seek, error) {
	args := []any{offset}
	if after != nil {
		seek, err := filesOrder.seekArgs(after)
		if err != nil {
			return nil, nil, err
		}
		args = append(args, seek...)
	}
	rows, err := q.Query(ctx, filesQuery(q.Dialect(), after != nil, limit+1), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	out := make([]File, 0, limit+1)
	for rows.Next() {
		var f File
		var meta string
		if err := rows.Scan(fileDest(&f, &meta)...); err != nil {
			return nil, nil, err
		}
		f.Metadata = json.RawMessage(meta)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	last := out[limit-1]
	return out[:limit], &Seek{Key: filesOrder.seekKey(last.CreatedAt, ""), ID: last.ID}, nil
}

// FileDocument is how a file lists the documents that reference it.
type FileDocument struct {
	ID        string
	Filename  string
	MimeType  string
	CreatedAt time.Time
}

func documentsOfFile(ctx context.Context, q sqldb.Querier, fileID string) ([]FileDocument, error) {
	rows, err := q.Query(ctx, `
		SELECT id, filename, mime_type, created_at FROM documents
		WHERE file_id = $1 ORDER BY created_at, id`, fileID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []FileDocument{}
	for rows.Next() {
		var d FileDocument
		if err := rows.Scan(&d.ID, &d.Filename, &d.MimeType, &d.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// deleteOrphanFile deletes a file only while no document references it.
func deleteOrphanFile(ctx context.Context, q sqldb.Querier, id string) (bool, error) {
	n, err := q.Exec(ctx, `DELETE FROM files WHERE id = $1 AND document_count = 0`, id)
	return n == 1, err
}

// orphanFilesQuery is served by the partial index files_orphaned, so the
// reconciler finds the few unreferenced files without reading the others.
func orphanFilesQuery(d sqldb.Dialect) string {
	return `SELECT ` + fileColumns(d) + ` FROM files f WHERE f.document_count = 0 AND f.updated_at < $1`
}

// orphanFilesBefore lists files no document has referenced since cutoff.
func orphanFilesBefore(ctx context.Context, q sqldb.Querier, cutoff time.Time) ([]File, error) {
	rows, err := q.Query(ctx, orphanFilesQuery(q.Dialect()), cutoff)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		var meta string
		if err := rows.Scan(fileDest(&f, &meta)...); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// fileKeys returns the storage key of every file, with its id and creation
// time.
func fileKeys(ctx context.Context, q sqldb.Querier) (map[string]File, error) {
	rows, err := q.Query(ctx, `SELECT id, storage_key, created_at FROM files`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]File{}
	for rows.Next() {
		var f File
		if err := rows.Scan(&f.ID, &f.StorageKey, &f.CreatedAt); err != nil {
			return nil, err
		}
		out[f.StorageKey] = f
	}
	return out, rows.Err()
}

// fileWithKeyQuery counts the files naming a storage key, from the index
// files_storage_key: it runs once per blob the reconciler may remove or finds
// missing, and on every file delete.
const fileWithKeyQuery = `SELECT count(*) FROM files WHERE storage_key = $1`

func fileExistsWithKey(ctx context.Context, q sqldb.Querier, key string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, fileWithKeyQuery, key).Scan(&n)
	return n > 0, err
}
