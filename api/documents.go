package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/cursor"
	"github.com/tenantry/tenantry/document"
	"github.com/tenantry/tenantry/permission"
)

type fileSummary struct {
	ID        string    `json:"id" format:"uuid"`
	SHA256    string    `json:"sha256_hash"`
	MD5       string    `json:"md5_hash" doc:"Kept for compatibility; SHA-256 is the deduplication key."`
	S3Path    string    `json:"s3_path" doc:"Storage key of the content."`
	FileSize  int64     `json:"file_size"`
	CreatedAt time.Time `json:"created_at"`
}

type documentView struct {
	ID        string       `json:"id" format:"uuid"`
	Filename  string       `json:"filename"`
	MimeType  string       `json:"mime_type"`
	FileID    string       `json:"file_id" format:"uuid"`
	UserID    string       `json:"user_id" format:"uuid" doc:"The uploader, who owns the document."`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	CreatedBy *string      `json:"created_by" format:"uuid"`
	File      *fileSummary `json:"file,omitempty"`
	// TimestampStatus is the trusted time-stamp status of the file.
	TimestampStatus string `json:"timestamp_status" enum:"none,pending,stamped,failed" doc:"The trusted time-stamp (RFC 3161) status of the document's file."`
}

func viewDocument(d *document.Document) documentView {
	v := documentView{
		ID: d.ID, Filename: d.Filename, MimeType: d.MimeType, FileID: d.FileID, UserID: d.UserID,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), CreatedBy: optional(d.CreatedBy),
		TimestampStatus: d.TimestampStatus,
	}
	if v.TimestampStatus == "" {
		v.TimestampStatus = "none"
	}
	if f := d.File; f != nil {
		v.File = &fileSummary{ID: f.ID, SHA256: f.SHA256, MD5: f.MD5, S3Path: f.StorageKey, FileSize: f.Size, CreatedAt: f.CreatedAt.UTC()}
	}
	return v
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type pagination struct {
	Page       int     `json:"page" doc:"The page number; on a page reached by cursor, its place in the walk."`
	PerPage    int     `json:"per_page"`
	Total      int64   `json:"total" doc:"How many items match. On a page reached by cursor, a listing that keeps a running count (documents without a filename filter, files) reads it afresh; the others (documents filtered by filename, audit entries) give the count taken on the page the walk began with, carried in the cursor, so that no deep page counts rows."`
	Pages      int64   `json:"pages" doc:"Pages of per_page items that total makes."`
	NextCursor *string `json:"next_cursor" doc:"Pass as cursor to get the next page, by a seek that costs what the first page costs; null on the last page. Opaque and signed: it is accepted only by the same listing of the same tenant with the same sort and filters."`
}

// of describes the page asked for of a listing of total items.
func (in Paging) of(total int64) pagination {
	return pagination{Page: in.Page, PerPage: in.PerPage, Total: total, Pages: (total + int64(in.PerPage) - 1) / int64(in.PerPage)}
}

// paginate describes a page. next, when set, is the position the next
// page starts after; it becomes a cursor under scope, carrying the next
// page's number and total.
func (s *Server) paginate(scope cursor.Scope, page, perPage int, total int64, next *cursor.Position) pagination {
	p := Paging{Page: page, PerPage: perPage}.of(total)
	if next != nil {
		next.Page, next.Total = page+1, total
		c := s.cursors.Encode(scope, *next)
		p.NextCursor = &c
	}
	return p
}

// resume reads the cursor a listing was asked to continue from, nil when
// none was given. A cursor names its own page, so a page number beyond the
// first beside it is a contradiction.
func (s *Server) resume(scope cursor.Scope, in CursorPaging) (*cursor.Position, error) {
	if in.Cursor == "" {
		return nil, nil
	}
	if in.Page > 1 {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Give either cursor or page, not both")
	}
	p, err := s.cursors.Decode(scope, in.Cursor)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

type documentList struct {
	Documents  []documentView `json:"documents"`
	Pagination pagination     `json:"pagination"`
}

type listDocumentsInput struct {
	TenantPath
	CursorPaging
	Filename text   `query:"filename" maxLength:"255" doc:"Case-insensitive substring of the filename; % and _ match themselves."`
	Sort     string `query:"sort" enum:"-created_at,created_at,-filename,filename" default:"-created_at" doc:"Order; a leading - sorts descending."`
	// TimestampStatus filters by the trusted time-stamp of the file.
	TimestampStatus string `query:"timestamp_status" enum:"none,pending,stamped,failed" doc:"Only documents whose file's time-stamp has this status."`
}

// uploadInput captures the raw request, which the upload reads as a stream
// instead of letting huma buffer a multipart form.
type uploadInput struct {
	TenantPath
	r *http.Request
	w http.ResponseWriter
}

// Resolve implements huma.Resolver to reach the underlying request.
func (u *uploadInput) Resolve(ctx huma.Context) []error {
	u.r, u.w = humago.Unwrap(ctx)
	return nil
}

type updateDocumentInput struct {
	DocumentPath
	Body struct {
		Filename *text `json:"filename,omitempty" doc:"1 to 255 characters, without path separators or control characters."`
		MimeType *text `json:"mime_type,omitempty" doc:"type/subtype, without parameters."`
	}
}

type deletedDocument struct {
	DeletedDocumentID string `json:"deleted_document_id" format:"uuid"`
	FileOrphaned      bool   `json:"file_orphaned" doc:"True when no document references the file any more; its content is removed by a file delete or the reconciler."`
}

type downloadURLInput struct {
	DocumentPath
	ExpiresIn int `query:"expires_in" minimum:"60" maximum:"86400" default:"3600" doc:"Lifetime of the link in seconds, 60 to 86400."`
}

type downloadURL struct {
	DownloadURL string    `json:"download_url"`
	ExpiresIn   int       `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
	Filename    string    `json:"filename"`
	MimeType    string    `json:"mime_type"`
	FileSize    int64     `json:"file_size"`
}

// DownloadInput selects a document and, optionally, a byte range of it. It
// is exported because huma reads parameters only from exported embedded
// structs.
type DownloadInput struct {
	DocumentPath
	Range       string `header:"Range" doc:"A single byte range, such as bytes=0-1023."`
	IfRange     string `header:"If-Range"`
	IfNoneMatch string `header:"If-None-Match"`
}

type signedDownloadInput struct {
	DownloadInput
	Expires   string `query:"expires" required:"true"`
	Signature string `query:"signature" required:"true"`
}

// multipartRequest documents the upload body; the handler reads it itself.
// Each operation gets its own: huma completes what it is given as it
// registers an operation, and servers may be built concurrently.
func multipartRequest() *huma.RequestBody {
	return &huma.RequestBody{
		Required: true,
		Content: map[string]*huma.MediaType{"multipart/form-data": {Schema: &huma.Schema{
			Type:     "object",
			Required: []string{"file"},
			Properties: map[string]*huma.Schema{
				"file":      {Type: "string", Format: "binary", Description: "The content; streamed, never buffered whole."},
				"filename":  {Type: "string", Pattern: textPattern, Description: "Name to file it under; defaults to the part's filename. No control characters."},
				"mime_type": {Type: "string", Pattern: textPattern, Description: "type/subtype; defaults to the part's Content-Type."},
			},
		}}},
	}
}

// binaryResponses documents a streamed download, afresh for each operation:
// huma adds the operation's error responses to the map it is given.
func binaryResponses() map[string]*huma.Response {
	// The content is sent with the type it was stored with, whatever that is.
	content := func() map[string]*huma.MediaType {
		return map[string]*huma.MediaType{"*/*": {Schema: &huma.Schema{Type: "string", Format: "binary"}}}
	}
	return map[string]*huma.Response{
		"200": {Description: "The content, with its stored MIME type.", Content: content()},
		"206": {Description: "The requested byte range.", Content: content()},
		"304": {Description: "Not modified (If-None-Match)."},
	}
}

func (s *Server) registerDocuments() {
	tags := []string{"Documents"}
	base := "/api/tenants/{tenant_id}/documents"

	huma.Register(s.api, requires(permission.DocumentsRead, huma.Operation{
		OperationID: "list-documents", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "List the tenant's documents",
		Description: "A page of the tenant's documents with their files, optionally filtered by filename, in the order asked. " +
			"Walk deep listings by cursor (next_cursor), which costs the same at any depth; page is kept for compatibility. Any member may list.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *listDocumentsInput) (*response[documentList], error) {
		tenantID := in.id(ctx)
		scope := cursor.Scope{"documents", tenantID, in.Sort, string(in.Filename), in.TimestampStatus}
		from, err := s.resume(scope, in.CursorPaging)
		if err != nil {
			return nil, err
		}
		q := document.ListQuery{Page: in.Page, PerPage: in.PerPage, Filename: string(in.Filename), Sort: in.Sort, TimestampStatus: in.TimestampStatus}
		page, total := in.Page, int64(0)
		if from != nil {
			q.After = &document.Seek{Key: from.Key, ID: from.ID}
			page, total = from.Page, from.Total
		}
		l, err := s.svc.Documents.List(ctx, tenantID, q)
		if err != nil {
			return nil, err
		}
		if l.Total >= 0 {
			total = l.Total
		}
		var next *cursor.Position
		if l.Next != nil {
			next = &cursor.Position{Key: l.Next.Key, ID: l.Next.ID}
		}
		out := documentList{Documents: make([]documentView, len(l.Documents)), Pagination: s.paginate(scope, page, in.PerPage, total, next)}
		for i := range l.Documents {
			out.Documents[i] = viewDocument(&l.Documents[i])
		}
		return ok("Documents retrieved successfully", out), nil
	})

	huma.Register(s.api, quotaLimited(requires(permission.DocumentsCreate, huma.Operation{
		OperationID: "upload-document", Method: http.MethodPost, Path: base, Tags: tags,
		Summary: "Upload a document",
		Description: "multipart/form-data with a file part. The content is streamed to storage once, hashed on the way; " +
			"content the tenant already stores is shared, not stored again. Users and admins may upload. " +
			"The tenant's quotas may refuse it (403 QUOTA_EXCEEDED): a document over the documents quota, or a content " +
			"that does not fit in the storage quota's room left. Content the tenant already stores takes no more room, " +
			"but must fit in the room left while it arrives. An upload whose size is declared (the request's " +
			"Content-Length, or the file part's) is refused before its content is read; otherwise it is read only " +
			"until it passes the room left.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType},
	})), func(ctx context.Context, in *uploadInput) (*response[documentView], error) {
		doc, err := s.upload(ctx, in.id(ctx), in.w, in.r)
		if tenantry.ErrorCode(err) == tenantry.EQuotaExceeded {
			// The rest of a refused upload is not wanted. Closing the
			// body would still read on, up to 256 KiB, to keep the
			// connection alive, waiting on a client that may send
			// slowly; with the read deadline passed it takes only what
			// has arrived, and unless that was all, the connection ends
			// after the answer. A connection kept needs its deadline
			// back for the next request.
			rc := http.NewResponseController(in.w)
			_ = rc.SetReadDeadline(time.Now())
			_ = in.r.Body.Close()
			_ = rc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			return nil, err
		}
		if s.cfg.Metrics != nil {
			s.cfg.Metrics.Uploaded(doc.File.Size)
		}
		return created("Document uploaded successfully", viewDocument(doc)), nil
	})
	// Documented after registration: a request schema given to huma would
	// make it read and decode the body itself, which the upload must not.
	s.api.OpenAPI().Paths[base].Post.RequestBody = multipartRequest()

	huma.Register(s.api, huma.Operation{
		OperationID: "documents-health", Method: http.MethodGet, Path: base + "/health", Tags: tags,
		Summary:     "Documents API health",
		Description: "Answers 200 while the documents API serves requests. Needs no credentials and does not look the tenant up.",
	}, func(ctx context.Context, in *TenantPath) (*response[serviceHealth], error) {
		return ok("Documents API is healthy", serviceHealth{Status: "healthy", Service: "documents"}), nil
	})

	huma.Register(s.api, requires(permission.DocumentsRead, huma.Operation{
		OperationID: "get-document", Method: http.MethodGet, Path: base + "/{document_id}", Tags: tags,
		Summary:     "A document with its file",
		Description: "The document's metadata and the file holding its content. Any member may read.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *DocumentPath) (*response[documentView], error) {
		d, err := s.svc.Documents.Get(ctx, in.id(ctx), in.DocumentID.String())
		if err != nil {
			return nil, err
		}
		return ok("Document retrieved successfully", viewDocument(d)), nil
	})

	huma.Register(s.api, requires(permission.DocumentsUpdate, huma.Operation{
		OperationID: "update-document", Method: http.MethodPut, Path: base + "/{document_id}", Tags: tags,
		Summary:     "Rename a document or change its MIME type",
		Description: "Admins may change any document, users the ones they uploaded.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *updateDocumentInput) (*response[documentView], error) {
		d, err := s.svc.Documents.Update(ctx, in.id(ctx), in.DocumentID.String(), document.Update{Filename: (*string)(in.Body.Filename), MimeType: (*string)(in.Body.MimeType)})
		if err != nil {
			return nil, err
		}
		return ok("Document updated successfully", viewDocument(d)), nil
	})

	huma.Register(s.api, requires(permission.DocumentsDelete, huma.Operation{
		OperationID: "delete-document", Method: http.MethodDelete, Path: base + "/{document_id}", Tags: tags,
		Summary: "Delete a document",
		Description: "Admins may delete any document, users the ones they uploaded. The file stays until no document " +
			"references it and a file delete or the reconciler removes it.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *DocumentPath) (*response[deletedDocument], error) {
		del, err := s.svc.Documents.Delete(ctx, in.id(ctx), in.DocumentID.String())
		if err != nil {
			return nil, err
		}
		return ok("Document deleted successfully", deletedDocument{DeletedDocumentID: del.DocumentID, FileOrphaned: del.FileOrphaned}), nil
	})

	huma.Register(s.api, requires(permission.DocumentsDownload, huma.Operation{
		OperationID: "download-document", Method: http.MethodGet, Path: base + "/{document_id}/download", Tags: tags,
		Summary: "Download a document",
		Description: "Streams the content with its stored MIME type. A single byte range (Range, If-Range) and " +
			"If-None-Match are honoured. Any member may download.",
		Responses: binaryResponses(),
		Errors:    []int{http.StatusBadRequest, http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable},
	}), func(ctx context.Context, in *DownloadInput) (*huma.StreamResponse, error) {
		d, err := s.svc.Documents.Downloadable(ctx, in.id(ctx), in.DocumentID.String())
		if err != nil {
			return nil, err
		}
		return s.stream(ctx, d, in)
	})

	huma.Register(s.api, requires(permission.DocumentsDownload, huma.Operation{
		OperationID: "document-download-url", Method: http.MethodGet, Path: base + "/{document_id}/download-url", Tags: tags,
		Summary: "A link that downloads the document without credentials until it expires",
		Description: "On S3 storage a presigned URL of the object store; on local storage a URL tenantry signs and serves " +
			"itself. Anyone holding the link can download until it expires.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *downloadURLInput) (*response[downloadURL], error) {
		link, err := s.svc.Documents.DownloadLink(ctx, in.id(ctx), in.DocumentID.String(), time.Duration(in.ExpiresIn)*time.Second)
		if err != nil {
			return nil, err
		}
		u := link.URL
		if u == "" {
			u = s.publicBase(ctx) + link.Path
		}
		d := link.Document
		return ok("Download URL generated successfully", downloadURL{
			DownloadURL: u, ExpiresIn: in.ExpiresIn, ExpiresAt: link.ExpiresAt,
			Filename: d.Filename, MimeType: d.MimeType, FileSize: d.File.Size,
		}), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "download-document-by-link", Method: http.MethodGet, Path: base + "/{document_id}/content", Tags: tags,
		Summary:     "Download a document through a signed link",
		Description: "The target of the links download-url returns on local storage. Needs no credentials; a tampered or expired link is refused (403).",
		Responses:   binaryResponses(),
		Errors:      []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable},
	}, func(ctx context.Context, in *signedDownloadInput) (*huma.StreamResponse, error) {
		d, err := s.svc.Documents.SignedDocument(ctx, in.id(ctx), in.DocumentID.String(), in.Expires, in.Signature)
		if err != nil {
			return nil, err
		}
		return s.stream(ctx, d, &in.DownloadInput)
	})
}

// publicBase is the scheme and host clients reach tenantry at.
func (s *Server) publicBase(ctx context.Context) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	if info := infoFrom(ctx); info != nil {
		return info.base
	}
	return ""
}

// maxFieldBytes bounds the text fields of an upload form.
const maxFieldBytes = 4 << 10

// uploadBufferSize is how much of an upload body is read from the
// connection at a time. mime/multipart reads its source 4 KiB at a time;
// without a larger buffer in front of it, every 4 KiB of an upload would cost
// a system call.
const uploadBufferSize = 256 << 10

// uploadReaders recycles the upload buffers, so that concurrent uploads do
// not each allocate one afresh; at rest it holds nothing the next upload
// could see.
var uploadReaders = sync.Pool{New: func() any { //nolint:gochecknoglobals // a cache of empty buffers
	return bufio.NewReaderSize(nil, uploadBufferSize)
}}

// upload reads a multipart upload as a stream: text fields may come before
// or after the file part, the file part goes straight to storage, and the
// whole body is bounded so that extra parts cannot make it unbounded.
func (s *Server) upload(ctx context.Context, tenantID string, w http.ResponseWriter, r *http.Request) (*document.Document, error) {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(ct), "multipart/form-data") {
		return nil, tenantry.Errorf(tenantry.EUnsupportedMediaType, "Expected a multipart/form-data body")
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Malformed multipart body")
	}
	br := uploadReaders.Get().(*bufio.Reader)
	br.Reset(http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes+1<<20))
	// Nothing reads br once upload returns: the parts below are consumed
	// or abandoned before then.
	defer func() {
		br.Reset(nil)
		uploadReaders.Put(br)
	}()
	mr := multipart.NewReader(br, params["boundary"])
	var (
		received                               *document.Received
		filename, mimeType, partName, partType string
		haveFilename, haveMimeType             bool
	)
	fail := func(err error) (*document.Document, error) {
		if received != nil {
			s.svc.Documents.Discard(ctx, received)
		}
		return nil, err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fail(bodyError(err))
		}
		switch part.FormName() {
		case "file":
			if received != nil {
				return fail(tenantry.Errorf(tenantry.EBadRequest, "Only one file may be uploaded at a time"))
			}
			partName, partType = part.FileName(), part.Header.Get("Content-Type")
			if received, err = s.svc.Documents.Receive(ctx, tenantID, partReader{part}, declaredSize(r, part)); err != nil {
				return nil, err
			}
		case "filename":
			if filename, err = readField(part); err != nil {
				return fail(err)
			}
			haveFilename = true
		case "mime_type":
			if mimeType, err = readField(part); err != nil {
				return fail(err)
			}
			haveMimeType = true
		default:
			return fail(&tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
				Details: map[string][]string{part.FormName(): {"Unknown field."}}})
		}
	}
	if received == nil {
		return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"file": {"File is required"}}}
	}
	if !haveFilename {
		filename = partName
	}
	if !haveMimeType {
		mimeType = document.PartMimeType(partType)
	}
	return s.svc.Documents.Commit(ctx, received, document.Metadata{Filename: filename, MimeType: mimeType})
}

// multipartOverhead bounds what a valid upload carries beside the file's
// content: the two text fields (each at most maxFieldBytes), and the
// boundaries and headers of three parts, which a generous 16 KiB holds.
const multipartOverhead = 2*maxFieldBytes + 16<<10

// declaredSize is a size the file part is known to reach before any of it
// is read, so that an upload that cannot fit in its tenant's quota is
// refused before its body is: the part's own Content-Length when the client
// sent one, otherwise the request's less what the rest of it may take, or 0
// when neither says.
func declaredSize(r *http.Request, part *multipart.Part) int64 {
	if v := part.Header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return max(r.ContentLength-multipartOverhead, 0)
}

// partReader reports a broken or oversized request body as the client's
// error rather than a server failure.
type partReader struct{ r io.Reader }

func (p partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		err = bodyError(err)
	}
	return n, err
}

func bodyError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tenantry.Errorf(tenantry.EPayloadTooLarge, "Request body too large")
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return tenantry.Errorf(tenantry.ERequestTimeout, "The request body stopped arriving")
	}
	var te *tenantry.Error
	if errors.As(err, &te) {
		return te
	}
	return tenantry.Errorf(tenantry.EBadRequest, "Malformed or truncated multipart body")
}

func readField(part *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(partReader{part}, maxFieldBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFieldBytes {
		return "", &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{part.FormName(): {"Value too long"}}}
	}
	return string(b), nil
}

// stream answers a download: the whole content, or one byte range of it,
// with headers that are safe whatever the stored filename and type.
func (s *Server) stream(ctx context.Context, d *document.Document, in *DownloadInput) (*huma.StreamResponse, error) {
	size := d.File.Size
	etag := `"` + d.File.SHA256 + `"`
	if in.IfNoneMatch != "" && etagMatches(in.IfNoneMatch, etag) {
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.SetHeader("ETag", etag)
			hctx.SetStatus(http.StatusNotModified)
		}}, nil
	}
	rangeHeader := in.Range
	if in.IfRange != "" && in.IfRange != etag {
		rangeHeader = ""
	}
	offset, length, partial, err := parseRange(rangeHeader, size)
	if err != nil {
		return &huma.StreamResponse{Body: func(hctx huma.Context) {
			hctx.SetHeader("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			_, w := humago.Unwrap(hctx)
			writeAPIError(w, &apiError{status: http.StatusRequestedRangeNotSatisfiable, code: tenantry.EBadRequest, message: "Requested range not satisfiable"})
		}}, nil
	}
	rc, err := s.svc.Documents.Open(ctx, d, offset, length)
	if err != nil {
		return nil, err
	}
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		defer rc.Close()
		hctx.SetHeader("Content-Type", d.MimeType)
		hctx.SetHeader("Content-Disposition", document.ContentDisposition(d.Filename))
		hctx.SetHeader("Content-Length", strconv.FormatInt(length, 10))
		hctx.SetHeader("ETag", etag)
		hctx.SetHeader("Accept-Ranges", "bytes")
		hctx.SetHeader("Cache-Control", "private, no-cache")
		// Stored content is never rendered as part of tenantry's origin.
		hctx.SetHeader("Content-Security-Policy", "default-src 'none'; sandbox")
		status := http.StatusOK
		if partial {
			status = http.StatusPartialContent
			hctx.SetHeader("Content-Range", "bytes "+strconv.FormatInt(offset, 10)+"-"+strconv.FormatInt(offset+length-1, 10)+"/"+strconv.FormatInt(size, 10))
		}
		hctx.SetStatus(status)
		if _, err := io.Copy(hctx.BodyWriter(), rc); err != nil {
			loggerFrom(ctx, s.logger).WarnContext(ctx, "download interrupted", "document_id", d.ID, "error", err)
		}
	}}, nil
}

func etagMatches(header, etag string) bool {
	for candidate := range strings.SplitSeq(header, ",") {
		c := strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if c == "*" || c == etag {
			return true
		}
	}
	return false
}

var errRange = errors.New("unsatisfiable range")

// parseRange reads one "bytes=" range of a body of size bytes. An absent,
// multi-part or foreign-unit range selects the whole body, as RFC 9110
// allows; a syntactically valid range outside the body is an error (416).
func parseRange(header string, size int64) (offset, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(header), "bytes=")
	if header == "" || !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	switch {
	case first == "":
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n < 0 {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errRange
		}
		n = min(n, size)
		return size - n, n, true, nil
	default:
		start, perr := strconv.ParseInt(first, 10, 64)
		if perr != nil || start < 0 {
			return 0, size, false, nil
		}
		end := size - 1
		if last != "" {
			if end, perr = strconv.ParseInt(last, 10, 64); perr != nil || end < start {
				return 0, size, false, nil
			}
			end = min(end, size-1)
		}
		if start >= size {
			return 0, 0, false, errRange
		}
		return start, end - start + 1, true, nil
	}
}
