// Package document manages a tenant's documents and the deduplicated files
// behind them. An upload is streamed once: into a temporary blob while its
// SHA-256 and MD5 are computed, then promoted to the blob keyed by its
// SHA-256, and only then recorded, so that a row never references a blob
// that does not exist. Deduplication is decided by a unique index on the
// hash, so concurrent uploads of the same bytes share one file and one blob.
// Blobs outlive their last reference until a file delete or the reconciler
// removes them.
package document

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/blob"
	"github.com/tenantry/tenantry/digest"
	"github.com/tenantry/tenantry/outbox"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/quota"
	"github.com/tenantry/tenantry/sqldb"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/tenantdb"
)

// Config holds the document rules operators tune.
type Config struct {
	// MaxUploadBytes is the largest file accepted.
	MaxUploadBytes int64
	// BlobGrace is how old a blob without a row must be before it is
	// removed. An upload must record its file within half of it after
	// promoting the blob, or it is abandoned (its blob then goes too).
	BlobGrace time.Duration
	// SigningKey signs the download links tenantry serves itself.
	SigningKey []byte
	// Timestamping, when set, is asked before an upload is recorded
	// whether its tenant has trusted time-stamping on. If so, it returns
	// what records, in the upload's transaction, the request to stamp a
	// new content, and the file.process event says the file is to be
	// stamped: the tenant's setting when the file was uploaded decides.
	Timestamping interface {
		ForUpload(ctx context.Context, tenantID string) (func(ctx context.Context, tx sqldb.Tx, fileID string) error, error)
	}
}

// Service implements the document use cases.
type Service struct {
	tenants *tenant.Service
	dbs     *tenantdb.Manager
	blobs   blob.Store
	streams *outbox.Streams
	cfg     Config
	logger  *slog.Logger
}

// NewService returns a Service storing bytes in blobs and rows in the
// tenants' databases, recording its events through streams.
func NewService(tenants *tenant.Service, dbs *tenantdb.Manager, blobs blob.Store, streams *outbox.Streams, cfg Config, logger *slog.Logger) *Service {
	if cfg.BlobGrace <= 0 {
		cfg.BlobGrace = time.Hour
	}
	mac := hmac.New(sha256.New, cfg.SigningKey)
	mac.Write([]byte("tenantry download links v1"))
	// A key of its own for links, so that no signature made for one
	// purpose is ever valid for another.
	cfg.SigningKey = mac.Sum(nil)
	return &Service{tenants: tenants, dbs: dbs, blobs: blobs, streams: streams, cfg: cfg, logger: logger}
}

// blobPrefix is where a tenant's blobs live.
func blobPrefix(databaseName string) string { return blob.TenantPrefix(databaseName) }

// fileKey is the content address of a tenant's blob.
func fileKey(databaseName, sha string) string {
	return blobPrefix(databaseName) + "files/" + sha[0:2] + "/" + sha[2:4] + "/" + sha
}

func principal(ctx context.Context) tenantry.Principal {
	p, _ := tenantry.PrincipalFromContext(ctx)
	return p
}

// Received is an uploaded body held in a temporary blob until it is
// committed or discarded.
type Received struct {
	tenant  *tenant.MemberTenant
	tempKey string
	sums    digest.Sums
	limits  quota.Limits
}

// Size is the received body's length in bytes.
func (r *Received) Size() int64 { return r.sums.Size }

// tooLarge is the error of a body over the upload limit.
func (s *Service) tooLarge() error {
	return tenantry.Errorf(tenantry.EPayloadTooLarge, "File size exceeds the maximum of %d MB", s.cfg.MaxUploadBytes>>20)
}

// limited fails the read that would pass max bytes, so that nothing over
// the limit is stored.
type limited struct {
	r         io.Reader
	remaining int64
	err       error
}

func (l *limited) Read(p []byte) (int, error) {
	if l.remaining < 0 {
		return 0, l.err
	}
	if int64(len(p)) > l.remaining+1 {
		p = p[:l.remaining+1]
	}
	n, err := l.r.Read(p)
	l.remaining -= int64(n)
	if l.remaining < 0 {
		return 0, l.err
	}
	return n, err
}

// Receive streams an upload's body into a temporary blob of the tenant,
// computing its digests on the way. Only members who may upload get this
// far; nothing is read otherwise. declared is a size the content is known
// to reach before it is read (0 when unknown): an upload that cannot fit in
// the tenant's storage quota is refused without reading it, and one that
// turns out not to fit stops being read as soon as it passes the room left.
func (s *Service) Receive(ctx context.Context, tenantID string, body io.Reader, declared int64) (*Received, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, permission.DocumentsCreate)
	if err != nil {
		return nil, err
	}
	limits, err := s.tenants.Limits(ctx, mt.ID)
	if err != nil {
		return nil, err
	}
	most, over := s.cfg.MaxUploadBytes, s.tooLarge()
	if limits.Storage != nil || limits.Documents != nil {
		room, used, err := s.room(ctx, mt, limits)
		if err != nil {
			return nil, err
		}
		if limits.Storage != nil {
			// A content the tenant already stores takes no more room
			// (see reserve), but that is known only once it has been read
			// whole; reading on past the room left would make the quota
			// no bound on what an upload writes, so even such an upload
			// must fit in the room left while it arrives.
			full := quota.Exceeded(quota.Storage, *limits.Storage, used)
			if declared > room {
				return nil, full
			}
			if room < most {
				most, over = room, full
			}
		}
	}
	d := digest.NewReader(&limited{r: body, remaining: most, err: over})
	key, _, err := s.blobs.PutTemp(ctx, blobPrefix(mt.DatabaseName), d)
	if err != nil {
		d.Close()
		return nil, err
	}
	r := &Received{tenant: mt, tempKey: key, limits: limits}
	if r.sums, err = d.Sums(); err != nil {
		s.Discard(ctx, r)
		return nil, err
	}
	if r.sums.Size == 0 {
		s.Discard(ctx, r)
		return nil, &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed",
			Details: map[string][]string{"file": {"File is empty"}}}
	}
	return r, nil
}

// room returns how many bytes the tenant may still store and how many it
// uses, refusing at once an upload for which its documents quota has no
// room. It is a first look, to refuse early; the reservation made before
// anything is stored decides.
func (s *Service) room(ctx context.Context, mt *tenant.MemberTenant, limits quota.Limits) (room, used int64, err error) {
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(&mt.Tenant))
	if err != nil {
		return 0, 0, err
	}
	defer lease.Release()
	u, err := readCounters(ctx, lease.DB())
	if err != nil {
		return 0, 0, err
	}
	if limits.Documents != nil && u.QuotaDocuments >= *limits.Documents {
		return 0, 0, quota.Exceeded(quota.Documents, *limits.Documents, u.QuotaDocuments)
	}
	if limits.Storage == nil {
		return -1, u.QuotaBytes, nil
	}
	return max(*limits.Storage-u.QuotaBytes, 0), u.QuotaBytes, nil
}

// reservation is the room an upload holds in its tenant's quotas from
// before its content is stored until its document is recorded.
type reservation struct {
	id    string
	bytes int64
	at    time.Time
}

// reserve takes the room an upload needs in its tenant's quotas, or refuses
// it. Nothing is stored yet, so a refused upload leaves nothing behind.
//
// A content the tenant already stores does not count again: the storage
// quota bounds the bytes actually stored, the physical_bytes of the storage
// report (the dedup_savings_bytes there are the tenant's to keep), so a
// second document of the same content reserves no bytes, only a document.
// Should that content's last file go away before the document is recorded,
// the document stores it anew and its bytes are counted without a check.
func (s *Service) reserve(ctx context.Context, db sqldb.DB, r *Received) (*reservation, error) {
	res := &reservation{id: uuid.NewString(), bytes: r.sums.Size, at: sqldb.Now()}
	storageLimit, documentsLimit := int64(-1), int64(-1)
	if l := r.limits.Storage; l != nil {
		storageLimit = *l
	}
	if l := r.limits.Documents; l != nil {
		documentsLimit = *l
	}
	var bytesOK, documentsOK bool
	err := db.InTx(ctx, func(tx sqldb.Tx) error {
		stored, err := fileExistsWithSHA(ctx, tx, r.sums.SHA256)
		if err != nil {
			return err
		} else if stored {
			res.bytes = 0
		}
		if bytesOK, documentsOK, err = reserveQuota(ctx, tx, res.bytes, storageLimit, documentsLimit); err != nil {
			return err
		} else if !bytesOK || !documentsOK {
			return errRefused
		}
		return insertReservation(ctx, tx, res.id, res.bytes, res.at)
	})
	if !errors.Is(err, errRefused) {
		return res, err
	}
	// Rolled back: report what is used now, outside the transaction.
	u, err := readCounters(ctx, db)
	if err != nil {
		return nil, err
	}
	if !bytesOK {
		return nil, quota.Exceeded(quota.Storage, storageLimit, u.QuotaBytes)
	}
	return nil, quota.Exceeded(quota.Documents, documentsLimit, u.QuotaDocuments)
}

// errRefused rolls back a reservation the quotas have no room for.
var errRefused = errors.New("document: no room in the quotas")

// release gives back the room of an upload that failed. A failure to do so
// is left to the reconciler, which gives back reservations older than the
// grace period.
func (s *Service) release(ctx context.Context, db sqldb.DB, res *reservation) {
	if res == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err := db.InTx(ctx, func(tx sqldb.Tx) error {
		if held, err := deleteReservation(ctx, tx, res.id); err != nil || !held {
			return err
		}
		return addCounters(ctx, tx, counterDelta{reservedBytes: -res.bytes, reservedDocuments: -1})
	})
	if err != nil {
		s.logger.WarnContext(ctx, "giving back an upload's quota reservation: left to the reconciler", "reservation", res.id, "error", err)
	}
}

// Discard removes a received body that will not be committed.
func (s *Service) Discard(ctx context.Context, r *Received) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := s.blobs.Delete(ctx, r.tempKey); err != nil {
		s.logger.WarnContext(ctx, "discarding an upload: its temporary blob is left to the reconciler", "key", r.tempKey, "error", err)
	}
}

// Metadata describes a received body: the name and type it is filed under.
type Metadata struct {
	Filename string
	MimeType string
}

// Commit files a received body as a new document. Identical content already
// stored for the tenant is shared, not stored again.
func (s *Service) Commit(ctx context.Context, r *Received, meta Metadata) (*Document, error) {
	errs := tenantry.FieldErrors{}
	name := ValidFilename(errs, "filename", meta.Filename)
	mimeType := ValidMimeType(errs, "mime_type", meta.MimeType)
	if err := errs.Err(); err != nil {
		s.Discard(ctx, r)
		return nil, err
	}
	db := r.tenant.DatabaseName
	key := fileKey(db, r.sums.SHA256)
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(&r.tenant.Tenant))
	if err != nil {
		s.Discard(ctx, r)
		return nil, err
	}
	defer lease.Release()
	// Without any limit there is nothing to reserve: the quota totals
	// still follow every change, so that a limit set later starts right.
	var res *reservation
	started := time.Now()
	if r.limits.Storage != nil || r.limits.Documents != nil {
		if res, err = s.reserve(ctx, lease.DB(), r); err != nil {
			s.Discard(ctx, r)
			return nil, err
		}
	}
	// The blob is complete at its final key before any row names it, and
	// its modification time is renewed even if identical content was
	// there already, which keeps the reconciler off it for a grace period.
	if err := s.blobs.Promote(ctx, r.tempKey, key); err != nil {
		s.release(ctx, lease.DB(), res)
		s.Discard(ctx, r)
		return nil, err
	}
	// The reconciler takes the blob, and gives back the reservation, of an
	// upload that has not recorded its row within the grace period.
	if time.Since(started) > s.cfg.BlobGrace/2 {
		s.release(ctx, lease.DB(), res)
		return nil, tenantry.Errorf(tenantry.EUnavailable, "The upload could not be recorded in time; please retry")
	}

	var requestStamp func(ctx context.Context, tx sqldb.Tx, fileID string) error
	if s.cfg.Timestamping != nil {
		if requestStamp, err = s.cfg.Timestamping.ForUpload(ctx, r.tenant.ID); err != nil {
			s.release(ctx, lease.DB(), res)
			return nil, err
		}
	}
	p := principal(ctx)
	now := sqldb.Now()
	doc := &Document{ID: uuid.NewString(), Filename: name, MimeType: mimeType, UserID: p.UserID,
		CreatedAt: now, UpdatedAt: now, CreatedBy: p.UserID}
	tenantID := r.tenant.ID
	err = s.streams.TenantTx(ctx, tenantID, db, lease.DB(), func(tx sqldb.Tx) error {
		f := &File{ID: uuid.NewString(), SHA256: r.sums.SHA256, MD5: r.sums.MD5, Size: r.sums.Size,
			StorageKey: key, Metadata: []byte("{}"), CreatedAt: now, UpdatedAt: now, CreatedBy: p.UserID}
		inserted, err := insertFile(ctx, tx, f)
		if err != nil {
			return err
		}
		if !inserted {
			if f, err = findFileBySHA(ctx, tx, r.sums.SHA256); err != nil {
				return err
			}
			if f.Size != r.sums.Size {
				return fmt.Errorf("file %s: stored size %d differs from %d for the same SHA-256", f.ID, f.Size, r.sums.Size)
			}
		}
		if f.DocumentCount, err = addReferences(ctx, tx, f.ID, 1, now); err != nil {
			return err
		}
		doc.FileID, doc.File = f.ID, f
		if err := insertDocument(ctx, tx, doc); err != nil {
			return err
		}
		delta := counterDelta{documents: 1, logicalBytes: f.Size}
		if inserted {
			delta.files, delta.physicalBytes = 1, f.Size
		}
		if res != nil {
			if held, err := deleteReservation(ctx, tx, res.id); err != nil {
				return err
			} else if held {
				delta.reservedBytes, delta.reservedDocuments = -res.bytes, -1
			}
		}
		if err := addCounters(ctx, tx, delta); err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, tenantry.EventDocumentUploaded, tenantID, p.UserID, map[string]any{
			"document_id": doc.ID, "filename": doc.Filename, "mime_type": doc.MimeType, "file_id": f.ID,
			"file_size": f.Size, "sha256_hash": f.SHA256, "s3_path": f.StorageKey, "deduplicated": !inserted,
		}); err != nil {
			return err
		}
		if !inserted {
			return tx.QueryRow(ctx, `SELECT COALESCE((SELECT status FROM file_timestamps WHERE file_id = $1), 'none')`, f.ID).
				Scan(&doc.TimestampStatus)
		}
		doc.TimestampStatus = "none"
		if requestStamp != nil {
			if err := requestStamp(ctx, tx, f.ID); err != nil {
				return err
			}
			doc.TimestampStatus = "pending"
		}
		return outbox.Emit(ctx, tx, tenantry.EventFileProcess, tenantID, p.UserID, map[string]any{
			"file_id": f.ID, "sha256_hash": f.SHA256, "file_size": f.Size, "timestamp": requestStamp != nil,
		})
	})
	if err != nil {
		s.release(ctx, lease.DB(), res)
		return nil, err
	}
	audit.SetTarget(ctx, "document", doc.ID)
	audit.Annotate(ctx, "after", map[string]any{"filename": doc.Filename, "mime_type": doc.MimeType, "file_id": doc.FileID,
		"file_size": doc.File.Size, "sha256_hash": doc.File.SHA256})
	return doc, nil
}

// ListQuery selects a page of documents.
type ListQuery struct {
	Page     int
	PerPage  int
	Filename string
	// Sort is one of created_at, -created_at (the default), filename,
	// -filename.
	Sort string
	// TimestampStatus, when set, keeps the documents whose file has this
	// time-stamp status: none, pending, stamped or failed.
	TimestampStatus string
	// After, when set, continues a walk: the page is the one after this
	// position, Page is not used to skip rows, and the total is not
	// counted.
	After *Seek
}

// List returns a page of the tenant's documents, all members' included.
func (s *Service) List(ctx context.Context, tenantID string, q ListQuery) (*Listing, error) {
	if q.TimestampStatus != "" && !ValidTimestampStatus(q.TimestampStatus) {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "timestamp_status must be one of none, pending, stamped, failed")
	}
	lease, err := s.open(ctx, tenantID, permission.DocumentsRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	return listDocuments(ctx, lease.DB(), q.Filename, q.TimestampStatus, q.Sort, q.PerPage, (q.Page-1)*q.PerPage, q.After)
}

// open authorizes the caller on a tenant and leases its database.
func (s *Service) open(ctx context.Context, tenantID string, perm permission.Permission) (*tenantdb.Lease, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, perm)
	if err != nil {
		return nil, err
	}
	return s.dbs.Acquire(ctx, tenantdb.RefOf(&mt.Tenant))
}

// Get returns a document with its file.
func (s *Service) Get(ctx context.Context, tenantID, documentID string) (*Document, error) {
	return s.document(ctx, tenantID, documentID, permission.DocumentsRead)
}

// Downloadable returns a document the caller may download, for Open.
func (s *Service) Downloadable(ctx context.Context, tenantID, documentID string) (*Document, error) {
	return s.document(ctx, tenantID, documentID, permission.DocumentsDownload)
}

func (s *Service) document(ctx context.Context, tenantID, documentID string, perm permission.Permission) (*Document, error) {
	lease, err := s.open(ctx, tenantID, perm)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	return findDocument(ctx, lease.DB(), documentID)
}

// modifiable returns the document if the caller may do perm to it: a role
// granting it on every document may, one granting it on the caller's own
// documents only (:own) may on the ones the caller uploaded.
func (s *Service) modifiable(ctx context.Context, tenantID, documentID string, perm permission.Permission) (*tenant.MemberTenant, *tenantdb.Lease, *Document, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, perm)
	if err != nil {
		return nil, nil, nil, err
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(&mt.Tenant))
	if err != nil {
		return nil, nil, nil, err
	}
	doc, err := findDocument(ctx, lease.DB(), documentID)
	if err != nil {
		lease.Release()
		return nil, nil, nil, err
	}
	if !mt.Permissions.AllowsAll(perm) && doc.UserID != principal(ctx).UserID {
		lease.Release()
		return nil, nil, nil, tenantry.Errorf(tenantry.EForbidden, "You can only modify documents you uploaded")
	}
	return mt, lease, doc, nil
}

// Update is a change to a document; nil leaves a field alone.
type Update struct {
	Filename *string
	MimeType *string
}

// Update renames a document or changes its MIME type.
func (s *Service) Update(ctx context.Context, tenantID, documentID string, in Update) (*Document, error) {
	if in.Filename == nil && in.MimeType == nil {
		if _, err := s.tenants.Authorize(ctx, tenantID, permission.DocumentsUpdate); err != nil {
			return nil, err
		}
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Request body is required")
	}
	mt, lease, doc, err := s.modifiable(ctx, tenantID, documentID, permission.DocumentsUpdate)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	errs := tenantry.FieldErrors{}
	if in.Filename != nil {
		v := ValidFilename(errs, "filename", *in.Filename)
		in.Filename = &v
	}
	if in.MimeType != nil {
		v := ValidMimeType(errs, "mime_type", *in.MimeType)
		in.MimeType = &v
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	err = s.streams.TenantTx(ctx, mt.ID, mt.DatabaseName, lease.DB(), func(tx sqldb.Tx) error {
		if err := updateDocument(ctx, tx, doc.ID, in.Filename, in.MimeType, sqldb.Now()); err != nil {
			return err
		}
		after := map[string]any{"filename": doc.Filename, "mime_type": doc.MimeType}
		if in.Filename != nil {
			after["filename"] = *in.Filename
		}
		if in.MimeType != nil {
			after["mime_type"] = *in.MimeType
		}
		audit.Annotate(ctx, "before", map[string]any{"filename": doc.Filename, "mime_type": doc.MimeType})
		audit.Annotate(ctx, "after", after)
		return outbox.Emit(ctx, tx, tenantry.EventDocumentUpdated, mt.ID, principal(ctx).UserID, map[string]any{
			"document_id": doc.ID, "before": map[string]any{"filename": doc.Filename, "mime_type": doc.MimeType}, "after": after,
		})
	})
	if err != nil {
		return nil, err
	}
	return findDocument(ctx, lease.DB(), doc.ID)
}

// Deletion reports a deleted document and whether its file lost its last
// reference.
type Deletion struct {
	DocumentID   string
	FileOrphaned bool
}

// Delete deletes a document. Its file and blob stay until a file delete or
// the reconciler removes them.
func (s *Service) Delete(ctx context.Context, tenantID, documentID string) (*Deletion, error) {
	mt, lease, doc, err := s.modifiable(ctx, tenantID, documentID, permission.DocumentsDelete)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	out := &Deletion{DocumentID: doc.ID}
	now := sqldb.Now()
	err = s.streams.TenantTx(ctx, mt.ID, mt.DatabaseName, lease.DB(), func(tx sqldb.Tx) error {
		deleted, err := deleteDocument(ctx, tx, doc.ID)
		if err != nil {
			return err
		} else if !deleted {
			return errDocumentNotFound
		}
		left, err := addReferences(ctx, tx, doc.FileID, -1, now)
		if err != nil {
			return err
		}
		out.FileOrphaned = left == 0
		if err := addCounters(ctx, tx, counterDelta{documents: -1, logicalBytes: -doc.File.Size}); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, tenantry.EventDocumentDeleted, mt.ID, principal(ctx).UserID, map[string]any{
			"document_id": doc.ID, "filename": doc.Filename, "file_id": doc.FileID, "orphaned": out.FileOrphaned,
		})
	})
	if err != nil {
		return nil, err
	}
	audit.Annotate(ctx, "before", map[string]any{"filename": doc.Filename, "file_id": doc.FileID})
	audit.Annotate(ctx, "file_orphaned", out.FileOrphaned)
	return out, nil
}

// Open streams a document's content, or the byte range [offset,
// offset+length) of it (length -1 reads to the end).
func (s *Service) Open(ctx context.Context, doc *Document, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.blobs.Open(ctx, doc.File.StorageKey, offset, length)
	if errors.Is(err, blob.ErrNotFound) {
		s.logger.ErrorContext(ctx, "a file's blob is missing", "file_id", doc.FileID, "key", doc.File.StorageKey)
		return nil, tenantry.Errorf(tenantry.ENotFound, "File content not found in storage")
	}
	return rc, err
}

// Link is a URL that downloads a document without credentials until it
// expires. URL is absolute when the blob store signed it; otherwise Path is
// a tenantry path the HTTP layer completes with its public address.
type Link struct {
	URL       string
	Path      string
	ExpiresAt time.Time
	Document  *Document
}

// DownloadLink returns a link to a document valid for ttl: presigned by the
// blob store when it can, else signed by tenantry.
func (s *Service) DownloadLink(ctx context.Context, tenantID, documentID string, ttl time.Duration) (*Link, error) {
	doc, err := s.Downloadable(ctx, tenantID, documentID)
	if err != nil {
		return nil, err
	}
	expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
	url, err := s.blobs.PresignGet(ctx, doc.File.StorageKey, ttl, ContentDisposition(doc.Filename), doc.MimeType)
	if err == nil {
		return &Link{URL: url, ExpiresAt: expires, Document: doc}, nil
	}
	if !errors.Is(err, blob.ErrPresignUnsupported) {
		return nil, err
	}
	exp := strconv.FormatInt(expires.Unix(), 10)
	path := "/api/tenants/" + tenantID + "/documents/" + documentID + "/content?expires=" + exp +
		"&signature=" + s.sign(tenantID, documentID, exp)
	return &Link{Path: path, ExpiresAt: expires, Document: doc}, nil
}

func (s *Service) sign(tenantID, documentID, expires string) string {
	mac := hmac.New(sha256.New, s.cfg.SigningKey)
	mac.Write([]byte(tenantID + "\x00" + documentID + "\x00" + expires))
	return hex.EncodeToString(mac.Sum(nil))
}

// SignedDocument returns the document a signed link names, if the signature
// is genuine, the link has not expired and the tenant is still active. The
// signature stands in for a session: no principal is needed.
func (s *Service) SignedDocument(ctx context.Context, tenantID, documentID, expires, signature string) (*Document, error) {
	denied := tenantry.Errorf(tenantry.EForbidden, "Invalid or expired download link")
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || !hmac.Equal([]byte(signature), []byte(s.sign(tenantID, documentID, expires))) {
		return nil, denied
	}
	if time.Now().Unix() > exp {
		return nil, denied
	}
	t, err := s.tenants.Active(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(t))
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	return findDocument(ctx, lease.DB(), documentID)
}

// FilePage is a page of files and how many there are in all.
type FilePage struct {
	Files []File
	Total int64
	Usage Usage
	// Next is where the following page starts, nil on the last page.
	Next *Seek
}

// FileQuery selects a page of files.
type FileQuery struct {
	Page    int
	PerPage int
	// After, when set, continues a walk from this position instead of
	// skipping (Page-1)*PerPage files.
	After *Seek
}

// Files returns a page of the tenant's files, newest first. The total is
// the files counter, which costs nothing to read, so every page has it.
func (s *Service) Files(ctx context.Context, tenantID string, q FileQuery) (*FilePage, error) {
	lease, err := s.open(ctx, tenantID, permission.FilesRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	files, next, err := listFiles(ctx, lease.DB(), q.PerPage, (q.Page-1)*q.PerPage, q.After)
	if err != nil {
		return nil, err
	}
	usage, err := readCounters(ctx, lease.DB())
	if err != nil {
		return nil, err
	}
	return &FilePage{Files: files, Total: usage.Files, Usage: usage, Next: next}, nil
}

// FileDetail is a file with the documents that reference it.
type FileDetail struct {
	File
	Documents []FileDocument
}

// File returns one file with its documents.
func (s *Service) File(ctx context.Context, tenantID, fileID string) (*FileDetail, error) {
	lease, err := s.open(ctx, tenantID, permission.FilesRead)
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	f, err := findFile(ctx, lease.DB(), fileID)
	if err != nil {
		return nil, err
	}
	docs, err := documentsOfFile(ctx, lease.DB(), fileID)
	if err != nil {
		return nil, err
	}
	return &FileDetail{File: *f, Documents: docs}, nil
}

// FileDeletion reports a deleted file.
type FileDeletion struct {
	File *File
	// BlobRemoved is false when the blob was promoted too recently to be
	// removed safely; the reconciler removes it after the grace period.
	BlobRemoved bool
}

// DeleteFile deletes a file no document references, and its blob. Admins
// only.
func (s *Service) DeleteFile(ctx context.Context, tenantID, fileID string) (*FileDeletion, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, permission.FilesDelete)
	if err != nil {
		return nil, err
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(&mt.Tenant))
	if err != nil {
		return nil, err
	}
	defer lease.Release()
	var f *File
	err = s.streams.TenantTx(ctx, mt.ID, mt.DatabaseName, lease.DB(), func(tx sqldb.Tx) error {
		if f, err = findFile(ctx, tx, fileID); err != nil {
			return err
		}
		if f.DocumentCount > 0 {
			return tenantry.Errorf(tenantry.EConflict, "Cannot delete file: still referenced by %d documents", f.DocumentCount)
		}
		if deleted, err := deleteOrphanFile(ctx, tx, fileID); err != nil {
			return err
		} else if !deleted {
			return tenantry.Errorf(tenantry.EConflict, "Cannot delete file: it was referenced again")
		}
		if err := addCounters(ctx, tx, counterDelta{files: -1, physicalBytes: -f.Size}); err != nil {
			return err
		}
		return emitFileDeleted(ctx, tx, mt.ID, principal(ctx).UserID, f, "deleted")
	})
	if err != nil {
		return nil, err
	}
	removed, err := removeBlobIfUnreferenced(ctx, lease.DB(), s.blobs, f.StorageKey, time.Now().Add(-s.cfg.BlobGrace/2))
	if err != nil {
		s.logger.WarnContext(ctx, "deleting a file's blob: left to the reconciler", "key", f.StorageKey, "error", err)
	}
	return &FileDeletion{File: f, BlobRemoved: removed}, nil
}

func emitFileDeleted(ctx context.Context, tx sqldb.Tx, tenantID, userID string, f *File, reason string) error {
	return outbox.Emit(ctx, tx, tenantry.EventFileDeleted, tenantID, userID, map[string]any{
		"file_id": f.ID, "sha256_hash": f.SHA256, "file_size": f.Size, "reason": reason,
	})
}

// removeBlobIfUnreferenced deletes the blob at key if no file row names it
// and it was last promoted before cutoff. A more recent promotion may belong
// to an upload about to record a row for it.
func removeBlobIfUnreferenced(ctx context.Context, q sqldb.Querier, blobs blob.Store, key string, cutoff time.Time) (bool, error) {
	info, err := blobs.Stat(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	if !info.WrittenBefore(cutoff) {
		return false, nil
	}
	if referenced, err := fileExistsWithKey(ctx, q, key); err != nil || referenced {
		return false, err
	}
	return true, blobs.Delete(ctx, key)
}

// StorageReport is a tenant's storage totals with the limits it works
// under.
type StorageReport struct {
	Usage
	Limits  quota.Limits
	Members int64
}

// Storage returns the tenant's storage totals, its limits and its member
// count.
func (s *Service) Storage(ctx context.Context, tenantID string) (*StorageReport, error) {
	mt, err := s.tenants.Authorize(ctx, tenantID, permission.StorageRead)
	if err != nil {
		return nil, err
	}
	return s.TenantStorage(ctx, &mt.Tenant)
}

// TenantStorage is Storage for a tenant whatever its state, for platform
// administrators: the caller decides who may read it.
func (s *Service) TenantStorage(ctx context.Context, t *tenantry.Tenant) (*StorageReport, error) {
	var err error
	rep := &StorageReport{}
	if rep.Limits, err = s.tenants.Limits(ctx, t.ID); err != nil {
		return nil, err
	}
	if rep.Members, err = s.tenants.MemberCount(ctx, t.ID); err != nil {
		return nil, err
	}
	rep.Usage, err = s.usage(ctx, t)
	return rep, err
}

// usage reads a tenant's running totals, one small table in its database.
func (s *Service) usage(ctx context.Context, t *tenantry.Tenant) (Usage, error) {
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(t))
	if err != nil {
		return Usage{}, err
	}
	defer lease.Release()
	return readCounters(ctx, lease.DB())
}

// PlatformUsage adds up the running totals of every tenant whose database
// exists, deactivated and deleted ones included: their documents are still
// stored. The control database keeps no such totals, so each tenant's
// database is asked for its counters, a read of a few rows.
func (s *Service) PlatformUsage(ctx context.Context) (Usage, error) {
	var sum Usage
	list, err := s.tenants.Provisioned(ctx)
	if err != nil {
		return sum, err
	}
	for _, t := range list {
		u, err := s.usage(ctx, t)
		if err != nil {
			return sum, fmt.Errorf("usage of tenant %s: %w", t.ID, err)
		}
		sum.Documents += u.Documents
		sum.Files += u.Files
		sum.LogicalBytes += u.LogicalBytes
		sum.PhysicalBytes += u.PhysicalBytes
		sum.QuotaBytes += u.QuotaBytes
		sum.QuotaDocuments += u.QuotaDocuments
	}
	return sum, nil
}

// sniffBytes is how much of a content is read to detect its type, as much
// as the detection algorithm looks at.
const sniffBytes = 512

// ProcessFile inspects a stored content and records in its file's metadata
// the type its first bytes reveal, whatever the uploader declared. It does
// nothing for a file or tenant that no longer exists, and doing it twice
// changes nothing more.
func (s *Service) ProcessFile(ctx context.Context, tenantID, fileID string) error {
	t, err := s.tenants.Active(ctx, tenantID)
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	lease, err := s.dbs.Acquire(ctx, tenantdb.RefOf(t))
	if err != nil {
		return err
	}
	defer lease.Release()
	f, err := findFile(ctx, lease.DB(), fileID)
	if tenantry.ErrorCode(err) == tenantry.ENotFound {
		return nil
	} else if err != nil {
		return err
	}
	rc, err := s.blobs.Open(ctx, f.StorageKey, 0, sniffBytes)
	if errors.Is(err, blob.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	head, err := io.ReadAll(io.LimitReader(rc, sniffBytes))
	rc.Close()
	if err != nil {
		return err
	}
	meta := map[string]any{}
	if len(f.Metadata) > 0 {
		if err := json.Unmarshal(f.Metadata, &meta); err != nil {
			return fmt.Errorf("file %s metadata: %w", f.ID, err)
		}
	}
	meta["detected_mime_type"] = PartMimeType(http.DetectContentType(head))
	meta["processed_at"] = sqldb.Now()
	encoded, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	_, err = lease.DB().Exec(ctx, `UPDATE files SET file_metadata = $2 WHERE id = $1`, f.ID, string(encoded))
	return err
}
