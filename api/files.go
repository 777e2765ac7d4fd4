package api

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry/cursor"
	"github.com/tenantry/tenantry/document"
	"github.com/tenantry/tenantry/permission"
)

// FileView is a stored content as the API shows it.
type FileView struct {
	ID            string          `json:"id" format:"uuid"`
	SHA256        string          `json:"sha256_hash"`
	MD5           string          `json:"md5_hash"`
	S3Path        string          `json:"s3_path"`
	FileSize      int64           `json:"file_size"`
	FileMetadata  json.RawMessage `json:"file_metadata"`
	DocumentCount int64           `json:"document_count"`
	IsOrphaned    bool            `json:"is_orphaned" doc:"True when no document references the file."`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	CreatedBy     *string         `json:"created_by" format:"uuid"`
}

func viewFile(f *document.File) FileView {
	meta := f.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	return FileView{
		ID: f.ID, SHA256: f.SHA256, MD5: f.MD5, S3Path: f.StorageKey, FileSize: f.Size, FileMetadata: meta,
		DocumentCount: f.DocumentCount, IsOrphaned: f.DocumentCount == 0,
		CreatedAt: f.CreatedAt.UTC(), UpdatedAt: f.UpdatedAt.UTC(), CreatedBy: optional(f.CreatedBy),
	}
}

type fileStats struct {
	TotalFiles        int64   `json:"total_files"`
	TotalStorageBytes int64   `json:"total_storage_bytes"`
	TotalStorageMB    float64 `json:"total_storage_mb"`
}

type fileList struct {
	Files      []FileView `json:"files"`
	Pagination pagination `json:"pagination"`
	Stats      *fileStats `json:"stats,omitempty" doc:"With include_stats=true."`
}

type listFilesInput struct {
	TenantPath
	CursorPaging
	IncludeStats bool `query:"include_stats" doc:"Add the tenant's storage totals."`
}

type fileDocument struct {
	ID        string    `json:"id" format:"uuid"`
	Filename  string    `json:"filename"`
	MimeType  string    `json:"mime_type"`
	CreatedAt time.Time `json:"created_at"`
}

type fileDetail struct {
	FileView
	Documents []fileDocument `json:"documents"`
}

type deletedFile struct {
	FileID            string  `json:"file_id" format:"uuid"`
	MD5               string  `json:"md5_hash"`
	FreedStorageBytes int64   `json:"freed_storage_bytes"`
	FreedStorageMB    float64 `json:"freed_storage_mb"`
	ContentRemoved    bool    `json:"content_removed" doc:"False when the content was stored too recently to remove safely; the reconciler removes it later."`
}

type storageView struct {
	DocumentsCount    int64      `json:"documents_count"`
	FilesCount        int64      `json:"files_count"`
	LogicalBytes      int64      `json:"logical_bytes" doc:"Sum of the sizes of all documents."`
	PhysicalBytes     int64      `json:"physical_bytes" doc:"Bytes actually stored, each distinct content once."`
	DedupSavingsBytes int64      `json:"dedup_savings_bytes"`
	DedupRatio        float64    `json:"dedup_ratio" doc:"logical_bytes / physical_bytes; 1 without duplicates."`
	Quotas            quotasView `json:"quotas" doc:"The tenant's limits next to what it uses."`
}

type quotaView struct {
	Limit *int64 `json:"limit" nullable:"true" doc:"The limit; null when unlimited."`
	Used  int64  `json:"used"`
}

type quotasView struct {
	Storage   quotaView `json:"storage" doc:"Bytes stored, each distinct content once (physical_bytes): a document whose content the tenant already stores takes no more."`
	Documents quotaView `json:"documents"`
	Members   quotaView `json:"members"`
}

func megabytes(n int64) float64 { return math.Round(float64(n)/(1<<20)*100) / 100 }

func (s *Server) registerFiles() {
	tags := []string{"Files"}
	// The original served files under /api/files/{tenant_id}/files; those
	// paths stay as deprecated aliases.
	for _, base := range []string{"/api/tenants/{tenant_id}/files", "/api/files/{tenant_id}/files"} {
		alias := strings.HasPrefix(base, "/api/files")
		id := func(op string) string {
			if alias {
				return op + "-alias"
			}
			return op
		}

		huma.Register(s.api, requires(permission.FilesRead, huma.Operation{
			OperationID: id("list-files"), Method: http.MethodGet, Path: base, Tags: tags, Deprecated: alias,
			Summary: "List the tenant's distinct stored contents",
			Description: "Each content is stored once however many documents share it; each file says how many do. " +
				"Newest first; walk deep listings by cursor (next_cursor), which costs the same at any depth. " +
				"include_stats adds the tenant's totals. Any member may list.",
			Errors: []int{http.StatusBadRequest, http.StatusNotFound},
		}), func(ctx context.Context, in *listFilesInput) (*response[fileList], error) {
			tenantID := in.id(ctx)
			scope := cursor.Scope{"files", tenantID}
			from, err := s.resume(scope, in.CursorPaging)
			if err != nil {
				return nil, err
			}
			q := document.FileQuery{Page: in.Page, PerPage: in.PerPage}
			number := in.Page
			if from != nil {
				q.After = &document.Seek{Key: from.Key, ID: from.ID}
				number = from.Page
			}
			page, err := s.svc.Documents.Files(ctx, tenantID, q)
			if err != nil {
				return nil, err
			}
			var next *cursor.Position
			if page.Next != nil {
				next = &cursor.Position{Key: page.Next.Key, ID: page.Next.ID}
			}
			out := fileList{Files: make([]FileView, len(page.Files)), Pagination: s.paginate(scope, number, in.PerPage, page.Total, next)}
			for i := range page.Files {
				out.Files[i] = viewFile(&page.Files[i])
			}
			if in.IncludeStats {
				u := page.Usage
				out.Stats = &fileStats{TotalFiles: u.Files, TotalStorageBytes: u.PhysicalBytes, TotalStorageMB: megabytes(u.PhysicalBytes)}
			}
			return ok("Files retrieved successfully", out), nil
		})

		huma.Register(s.api, requires(permission.FilesRead, huma.Operation{
			OperationID: id("get-file"), Method: http.MethodGet, Path: base + "/{file_id}", Tags: tags, Deprecated: alias,
			Summary:     "A file with the documents that reference it",
			Description: "The stored content's metadata and the tenant's documents that share it. Any member may read.",
			Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
		}), func(ctx context.Context, in *FilePath) (*response[fileDetail], error) {
			f, err := s.svc.Documents.File(ctx, in.id(ctx), in.FileID.String())
			if err != nil {
				return nil, err
			}
			out := fileDetail{FileView: viewFile(&f.File), Documents: make([]fileDocument, len(f.Documents))}
			for i, d := range f.Documents {
				out.Documents[i] = fileDocument{ID: d.ID, Filename: d.Filename, MimeType: d.MimeType, CreatedAt: d.CreatedAt.UTC()}
			}
			return ok("File retrieved successfully", out), nil
		})

		huma.Register(s.api, requires(permission.FilesDelete, huma.Operation{
			OperationID: id("delete-file"), Method: http.MethodDelete, Path: base + "/{file_id}", Tags: tags, Deprecated: alias,
			Summary:     "Delete a file no document references, with its content (admins)",
			Description: "409 while documents still reference the file.",
			Errors:      []int{http.StatusBadRequest, http.StatusNotFound, http.StatusConflict},
		}), func(ctx context.Context, in *FilePath) (*response[deletedFile], error) {
			del, err := s.svc.Documents.DeleteFile(ctx, in.id(ctx), in.FileID.String())
			if err != nil {
				return nil, err
			}
			f := del.File
			return ok("Orphaned file deleted successfully", deletedFile{
				FileID: f.ID, MD5: f.MD5, FreedStorageBytes: f.Size, FreedStorageMB: megabytes(f.Size), ContentRemoved: del.BlobRemoved,
			}), nil
		})
	}

	huma.Register(s.api, requires(permission.StorageRead, huma.Operation{
		OperationID: "get-storage", Method: http.MethodGet, Path: "/api/tenants/{tenant_id}/storage", Tags: tags,
		Summary: "The tenant's storage totals and deduplication savings",
		Description: "Document and file counts, logical and physical bytes, what deduplication saves, and the tenant's quotas " +
			"(limit and use of storage, documents and members). Any member may read.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *TenantPath) (*response[storageView], error) {
		u, err := s.svc.Documents.Storage(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		ratio := 1.0
		if u.PhysicalBytes > 0 {
			ratio = math.Round(float64(u.LogicalBytes)/float64(u.PhysicalBytes)*1000) / 1000
		}
		return ok("Storage usage retrieved successfully", storageView{
			DocumentsCount: u.Documents, FilesCount: u.Files, LogicalBytes: u.LogicalBytes, PhysicalBytes: u.PhysicalBytes,
			DedupSavingsBytes: u.LogicalBytes - u.PhysicalBytes, DedupRatio: ratio,
			Quotas: quotasView{
				Storage:   quotaView{Limit: u.Limits.Storage, Used: u.PhysicalBytes},
				Documents: quotaView{Limit: u.Limits.Documents, Used: u.Documents},
				Members:   quotaView{Limit: u.Limits.Members, Used: u.Members},
			},
		}), nil
	})
}
