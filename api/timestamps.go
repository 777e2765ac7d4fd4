package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/permission"
	"github.com/tenantry/tenantry/timestamping"
)

// authorityList is one authority's name or several, in the order they are
// tried.
type authorityList []string

// UnmarshalJSON accepts a name or an array of names.
func (l *authorityList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = authorityList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("authority must be a name or an array of names")
	}
	*l = many
	return nil
}

// Schema implements huma.SchemaProvider.
func (authorityList) Schema(huma.Registry) *huma.Schema {
	name := &huma.Schema{Type: huma.TypeString, Pattern: textPattern, MaxLength: ptr(63)}
	return &huma.Schema{
		Description: "A configured authority's name, or several in the order they are tried (failover).",
		OneOf:       []*huma.Schema{name, {Type: huma.TypeArray, Items: &huma.Schema{Type: huma.TypeString, Pattern: textPattern, MaxLength: ptr(63)}, MaxItems: ptr(16)}},
	}
}

func ptr[T any](v T) *T { return &v }

type timestampingSettings struct {
	Enabled   bool       `json:"enabled" doc:"Whether each new file is stamped after its upload. Off by default."`
	Authority []string   `json:"authority" doc:"The authorities stamps are asked of, in order: the next is tried when one fails."`
	Algorithm string     `json:"hash_algorithm" enum:"sha256,sha384,sha512"`
	Available []string   `json:"available_authorities" doc:"The authorities this server is configured with."`
	UpdatedAt *time.Time `json:"updated_at" nullable:"true" doc:"Null until the settings are first changed."`
}

type putTimestampingInput struct {
	TenantPath
	Body struct {
		Enabled   *bool          `json:"enabled,omitempty"`
		Authority *authorityList `json:"authority,omitempty"`
		Algorithm *text          `json:"hash_algorithm,omitempty" doc:"sha256 (the default), sha384 or sha512."`
	}
}

type timestampView struct {
	FileID        string     `json:"file_id" format:"uuid"`
	Status        string     `json:"status" enum:"none,pending,stamped,failed" doc:"none: never asked; pending: asked, not yet done; stamped: a verified token is kept; failed: given up, see failure_reason."`
	Algorithm     *string    `json:"hash_algorithm" nullable:"true"`
	Authority     *string    `json:"authority" nullable:"true" doc:"The configured authority that issued the latest token."`
	GenTime       *time.Time `json:"gen_time" nullable:"true" doc:"The time the authority attests."`
	Serial        *string    `json:"serial_number" nullable:"true" doc:"The token's serial number, 0x and hexadecimal."`
	Policy        *string    `json:"policy_oid" nullable:"true"`
	Accuracy      *float64   `json:"accuracy_seconds" nullable:"true" doc:"The accuracy the authority states for gen_time; null when it states none."`
	VerifiedAt    *time.Time `json:"verified_at" nullable:"true" doc:"When the token was last verified."`
	FailureReason *string    `json:"failure_reason" nullable:"true" doc:"Why the last attempt failed."`
	Attempts      int        `json:"attempts"`
	RequestedAt   *time.Time `json:"requested_at" nullable:"true"`
	ChainLength   int        `json:"chain_length" doc:"Tokens in the evidence: the file's own and the archive stamps over it."`
}

func viewTimestamp(st *timestamping.Status) timestampView {
	v := timestampView{FileID: st.FileID, Status: st.Status, Attempts: st.Attempts, ChainLength: st.Chain,
		Algorithm: optional(st.Algorithm), Authority: optional(st.Authority), GenTime: optionalTime(st.GenTime),
		Serial: optional(st.Serial), Policy: optional(st.Policy), VerifiedAt: optionalTime(st.VerifiedAt),
		FailureReason: optional(st.FailureReason), RequestedAt: optionalTime(st.RequestedAt)}
	if st.Accuracy > 0 {
		v.Accuracy = ptr(st.Accuracy.Seconds())
	}
	return v
}

type createTimestampInput struct {
	FilePath
	Body *struct {
		Force bool `json:"force,omitempty" doc:"Stamp again a file already stamped."`
	}
}

type alreadyStamped struct {
	GenTime   *time.Time `json:"gen_time" nullable:"true"`
	Serial    *string    `json:"serial_number" nullable:"true"`
	Status    string     `json:"status"`
	Authority *string    `json:"tsa_authority" nullable:"true"`
}

type createdTimestamp struct {
	FileID    string          `json:"file_id" format:"uuid"`
	TaskID    *string         `json:"task_id,omitempty" doc:"The request's id, when one was scheduled."`
	Status    string          `json:"status" enum:"pending,stamped"`
	Timestamp *alreadyStamped `json:"timestamp,omitempty" doc:"The existing stamp, when the file was already stamped and force was not asked."`
}

type bulkInput struct {
	TenantPath
	Body struct {
		FileIDs []resourceID `json:"file_ids,omitempty" maxItems:"1000" doc:"The files to stamp, at most 1000."`
		Filter  *struct {
			NotTimestamped bool       `json:"not_timestamped,omitempty" doc:"Only files without a verified stamp."`
			UploadedBefore *time.Time `json:"uploaded_before,omitempty"`
			UploadedAfter  *time.Time `json:"uploaded_after,omitempty"`
		} `json:"filter,omitempty"`
	}
}

type bulkResult struct {
	TotalFiles        int     `json:"total_files"`
	TasksScheduled    int     `json:"tasks_scheduled"`
	EstimatedDuration float64 `json:"estimated_duration_minutes" doc:"At the per-authority rate the server is configured with."`
}

type chainCheckView struct {
	Seq       int       `json:"seq"`
	Kind      string    `json:"kind" enum:"file,archive"`
	Authority string    `json:"authority"`
	GenTime   time.Time `json:"gen_time"`
	Valid     bool      `json:"valid"`
	Reason    *string   `json:"reason" nullable:"true"`
}

type verification struct {
	Valid      bool             `json:"valid"`
	Reason     *string          `json:"reason" nullable:"true" doc:"Why the token does not verify."`
	Authority  *string          `json:"authority" nullable:"true" doc:"The configured authority whose roots the token chains to."`
	GenTime    *time.Time       `json:"gen_time" nullable:"true"`
	Serial     *string          `json:"serial_number" nullable:"true"`
	Policy     *string          `json:"policy_oid" nullable:"true"`
	Algorithm  *string          `json:"hash_algorithm" nullable:"true"`
	Signer     *string          `json:"signer" nullable:"true" doc:"The subject of the authority's certificate."`
	VerifiedAt time.Time        `json:"verified_at"`
	Chain      []chainCheckView `json:"chain,omitempty" doc:"Each token of the file's evidence, in order."`
}

func viewCheck(c *timestamping.Check) verification {
	v := verification{Valid: c.Valid, Reason: optional(c.Reason), Authority: optional(c.Authority), VerifiedAt: c.VerifiedAt.UTC()}
	if t := c.Token; t != nil {
		v.GenTime, v.Serial, v.Policy = optionalTime(t.GenTime), optional(t.SerialHex()), optional(t.Policy)
		v.Algorithm, v.Signer = optional(string(t.Algorithm)), optional(t.Signer.Subject.String())
	}
	for _, c := range c.Chain {
		v.Chain = append(v.Chain, chainCheckView{Seq: c.Seq, Kind: c.Kind, Authority: c.Authority, GenTime: c.GenTime.UTC(), Valid: c.Valid, Reason: optional(c.Reason)})
	}
	return v
}

// binaryDownload documents a download of one media type.
func binaryDownload(mediaType, description string) map[string]*huma.Response {
	return map[string]*huma.Response{"200": {Description: description, Content: map[string]*huma.MediaType{
		mediaType: {Schema: &huma.Schema{Type: "string", Format: "binary"}},
	}}}
}

func sendBytes(body []byte, mediaType, filename string) *huma.StreamResponse {
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		hctx.SetHeader("Content-Type", mediaType)
		hctx.SetHeader("Content-Disposition", `attachment; filename="`+filename+`"`)
		hctx.SetHeader("Content-Length", strconv.Itoa(len(body)))
		hctx.SetHeader("X-Content-Type-Options", "nosniff")
		hctx.SetHeader("Cache-Control", "no-store, no-cache, must-revalidate, private")
		hctx.SetStatus(http.StatusOK)
		_, _ = hctx.BodyWriter().Write(body)
	}}
}

type verifyEvidenceInput struct {
	r *http.Request
	w http.ResponseWriter
}

// Resolve implements huma.Resolver to reach the underlying request.
func (u *verifyEvidenceInput) Resolve(ctx huma.Context) []error {
	u.r, u.w = humago.Unwrap(ctx)
	return nil
}

// maxTSRBytes bounds an uploaded TimeStampResp.
const maxTSRBytes = 1 << 20

func (s *Server) registerTimestamps() {
	tags := []string{"Timestamps"}
	settings := "/api/tenants/{tenant_id}/timestamping"
	view := func(set *timestamping.Settings) timestampingSettings {
		return timestampingSettings{Enabled: set.Enabled, Authority: set.Authorities, Algorithm: set.Algorithm,
			Available: s.svc.Timestamps.Authorities(), UpdatedAt: optionalTime(set.UpdatedAt)}
	}

	huma.Register(s.api, requires(permission.TimestampingManage, huma.Operation{
		OperationID: "get-timestamping", Method: http.MethodGet, Path: settings, Tags: tags,
		Summary:     "The tenant's trusted time-stamping settings (admins)",
		Description: "Whether new files are stamped (RFC 3161), by which authorities in order, with which hash. Off by default.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *TenantPath) (*response[timestampingSettings], error) {
		set, err := s.svc.Timestamps.Settings(ctx, in.id(ctx))
		if err != nil {
			return nil, err
		}
		return ok("Timestamping settings retrieved successfully", view(set)), nil
	})

	huma.Register(s.api, requires(permission.TimestampingManage, huma.Operation{
		OperationID: "update-timestamping", Method: http.MethodPut, Path: settings, Tags: tags,
		Summary: "Change the tenant's trusted time-stamping settings (admins)",
		Description: "enabled turns stamping of new files on or off; authority names one of the configured authorities, " +
			"or several in the order they are tried; hash_algorithm is sha256, sha384 or sha512. Fields left out keep their value. " +
			"Turning stamping on sends each new file's digest (never its content) to the authorities.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *putTimestampingInput) (*response[timestampingSettings], error) {
		up := timestamping.SettingsUpdate{Enabled: in.Body.Enabled, Algorithm: (*string)(in.Body.Algorithm)}
		if in.Body.Authority != nil {
			names := []string(*in.Body.Authority)
			up.Authorities = &names
		}
		set, err := s.svc.Timestamps.SetSettings(ctx, in.id(ctx), up)
		if err != nil {
			return nil, err
		}
		return ok("Timestamping settings updated successfully", view(set)), nil
	})

	base := "/api/tenants/{tenant_id}/files/{file_id}/timestamp"
	huma.Register(s.api, requires(permission.FilesRead, huma.Operation{
		OperationID: "get-file-timestamp", Method: http.MethodGet, Path: base, Tags: tags,
		Summary:     "A file's trusted time-stamp status",
		Description: "Status (none, pending, stamped, failed) and, once stamped, what the token attests. Any member may read.",
		Errors:      []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *FilePath) (*response[timestampView], error) {
		st, err := s.svc.Timestamps.Status(ctx, in.id(ctx), in.FileID.String())
		if err != nil {
			return nil, err
		}
		return ok("Timestamp retrieved successfully", viewTimestamp(st)), nil
	})

	huma.Register(s.api, requires(permission.FilesRead, huma.Operation{
		OperationID: "download-file-timestamp", Method: http.MethodGet, Path: base + "/download", Tags: tags,
		Summary: "Download a file's time-stamp token (.tsr)",
		Description: "The DER TimeStampResp the authority returned, verifiable offline with " +
			"openssl ts -verify -data FILE -in file.tsr -CAfile ROOTS. 400 when the file is not stamped. Any member may download.",
		Responses: binaryDownload("application/timestamp-reply", "The DER TimeStampResp."),
		Errors:    []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *FilePath) (*huma.StreamResponse, error) {
		p, err := s.svc.Timestamps.Download(ctx, in.id(ctx), in.FileID.String())
		if err != nil {
			return nil, err
		}
		return sendBytes(p.Response, "application/timestamp-reply", "file_"+p.FileID+"_timestamp.tsr"), nil
	})

	huma.Register(s.api, requires(permission.FilesRead, huma.Operation{
		OperationID: "verify-file-timestamp", Method: http.MethodPost, Path: base + "/verify", Tags: tags,
		Summary: "Verify a file's time-stamp again, now",
		Description: "Checks the kept token against the stored content (its digest recomputed) and the authority's configured roots, " +
			"and each archive stamp over the token before it. valid is false, with the reason, when anything fails. Any member may ask.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *FilePath) (*response[verification], error) {
		c, err := s.svc.Timestamps.Verify(ctx, in.id(ctx), in.FileID.String())
		if err != nil {
			return nil, err
		}
		return ok("Timestamp verified", viewCheck(c)), nil
	})

	huma.Register(s.api, requires(permission.TimestampingManage, huma.Operation{
		OperationID: "create-file-timestamp", Method: http.MethodPost, Path: base + "/create", Tags: tags,
		Summary: "Stamp a file now (admins)",
		Description: "Schedules a stamp of the file (201). A file already stamped answers 200 with its stamp, unless force is true, " +
			"which stamps it again. 400 when the tenant has time-stamping off. The body is optional.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *createTimestampInput) (*response[createdTimestamp], error) {
		force := in.Body != nil && in.Body.Force
		r, err := s.svc.Timestamps.Create(ctx, in.id(ctx), in.FileID.String(), force)
		if err != nil {
			return nil, err
		}
		if st := r.Already; st != nil {
			return ok("File already timestamped", createdTimestamp{FileID: st.FileID, Status: st.Status, Timestamp: &alreadyStamped{
				GenTime: optionalTime(st.GenTime), Serial: optional(st.Serial), Status: st.Status, Authority: optional(st.Authority),
			}}), nil
		}
		return created("Timestamp task scheduled", createdTimestamp{FileID: in.FileID.String(), TaskID: &r.RequestID, Status: timestamping.Pending}), nil
	})

	huma.Register(s.api, requires(permission.TimestampingManage, huma.Operation{
		OperationID: "bulk-timestamp-files", Method: http.MethodPost, Path: "/api/tenants/{tenant_id}/files/timestamp/bulk", Tags: tags,
		Summary: "Stamp many files (admins)",
		Description: "file_ids (at most 1000), or filter: not_timestamped, uploaded_before, uploaded_after (RFC 3339). At most 1000 files " +
			"are scheduled; 201 with their count, 200 when none matches. Each is stamped by its own job, at the authority's rate.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *bulkInput) (*response[bulkResult], error) {
		tenantID := in.id(ctx)
		if len(in.Body.FileIDs) == 0 && in.Body.Filter == nil {
			if _, err := s.svc.Tenants.Authorize(ctx, tenantID, permission.TimestampingManage); err != nil {
				return nil, err
			}
			return nil, tenantry.Errorf(tenantry.EBadRequest, "Request body is required")
		}
		ids := make([]string, len(in.Body.FileIDs))
		for i, id := range in.Body.FileIDs {
			ids[i] = id.String()
		}
		var f timestamping.BulkFilter
		if bf := in.Body.Filter; bf != nil {
			f = timestamping.BulkFilter{NotTimestamped: bf.NotTimestamped, UploadedBefore: bf.UploadedBefore, UploadedAfter: bf.UploadedAfter}
		}
		res, err := s.svc.Timestamps.Bulk(ctx, tenantID, ids, f)
		if err != nil {
			return nil, err
		}
		out := bulkResult{TotalFiles: res.Files, TasksScheduled: res.Files, EstimatedDuration: math.Round(res.EstimatedDuration.Minutes()*10) / 10}
		if res.Files == 0 {
			return ok("No files found matching criteria", out), nil
		}
		return created("Bulk timestamp tasks scheduled", out), nil
	})

	// Both answer 200 as well, with the same body: the file already
	// stamped, or no file matching.
	for _, p := range []string{base + "/create", "/api/tenants/{tenant_id}/files/timestamp/bulk"} {
		op := s.api.OpenAPI().Paths[p].Post
		op.Responses["200"] = &huma.Response{Description: "Nothing was scheduled.", Content: op.Responses["201"].Content}
	}

	huma.Register(s.api, requires(permission.FilesRead, huma.Operation{
		OperationID: "file-timestamp-evidence", Method: http.MethodGet, Path: base + "/evidence", Tags: tags,
		Summary: "Download a file's time-stamp evidence (zip)",
		Description: "One archive with the file's digest, each token of its chain (.tsr), the authorities' certificates (chain.pem) " +
			"and a README saying how to check them with openssl ts -verify. 400 when the file is not stamped. Any member may download.",
		Responses: binaryDownload("application/zip", "The evidence archive."),
		Errors:    []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *FilePath) (*huma.StreamResponse, error) {
		ev, err := s.svc.Timestamps.Evidence(ctx, in.id(ctx), in.FileID.String())
		if err != nil {
			return nil, err
		}
		return sendBytes(ev.Zip, "application/zip", "file_"+ev.FileID+"_timestamp_evidence.zip"), nil
	})

	huma.Register(s.api, secured(huma.Operation{
		OperationID: "verify-timestamp-evidence", Method: http.MethodPost, Path: "/api/timestamps/verify", Tags: tags,
		Summary: "Verify a time-stamp token received from elsewhere",
		Description: "multipart/form-data with a tsr part (a DER TimeStampResp) and either a file part, hashed with the token's algorithm, " +
			"or a digest field in hex. The token must chain to the roots of one of the configured authorities. Any signed-in user.",
		Errors: []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType},
	}), func(ctx context.Context, in *verifyEvidenceInput) (*response[verification], error) {
		c, err := s.verifyEvidence(ctx, in.w, in.r)
		if err != nil {
			return nil, err
		}
		return ok("Timestamp verified", viewCheck(c)), nil
	})
	s.api.OpenAPI().Paths["/api/timestamps/verify"].Post.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
		"multipart/form-data": {Schema: &huma.Schema{
			Type:     huma.TypeObject,
			Required: []string{"tsr"},
			Properties: map[string]*huma.Schema{
				"tsr":    {Type: "string", Format: "binary", Description: "The DER TimeStampResp (.tsr)."},
				"file":   {Type: "string", Format: "binary", Description: "The stamped content; streamed, never buffered whole."},
				"digest": {Type: "string", Pattern: "^[0-9a-fA-F]+$", Description: "The stamped digest, in hex, instead of the file."},
			},
		}},
	}}
}

// verifyEvidence reads the verify form as a stream: the tsr part must come
// before a file part, which is hashed as it arrives.
func (s *Server) verifyEvidence(ctx context.Context, w http.ResponseWriter, r *http.Request) (*timestamping.Check, error) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" {
		return nil, tenantry.Errorf(tenantry.EUnsupportedMediaType, "Expected a multipart/form-data body")
	}
	if params["boundary"] == "" {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "Malformed multipart body")
	}
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes+1<<20), params["boundary"])
	var tsr, digest []byte
	invalid := func(field, msg string) error {
		return &tenantry.Error{Code: tenantry.EValidation, Message: "Validation failed", Details: map[string][]string{field: {msg}}}
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, bodyError(err)
		}
		switch part.FormName() {
		case "tsr":
			if tsr, err = io.ReadAll(io.LimitReader(partReader{part}, maxTSRBytes+1)); err != nil {
				return nil, err
			}
			if len(tsr) > maxTSRBytes {
				return nil, invalid("tsr", "Too large for a time-stamp response.")
			}
		case "digest":
			v, err := readField(part)
			if err != nil {
				return nil, err
			}
			if digest, err = hex.DecodeString(strings.TrimSpace(v)); err != nil || len(digest) == 0 {
				return nil, invalid("digest", "Must be a digest in hex.")
			}
		case "file":
			if tsr == nil {
				return nil, invalid("tsr", "The tsr part must come before the file part.")
			}
			return s.svc.Timestamps.VerifyEvidence(ctx, tsr, partReader{part}, nil)
		default:
			return nil, invalid(part.FormName(), "Unknown field.")
		}
	}
	switch {
	case tsr == nil:
		return nil, invalid("tsr", "A tsr part is required.")
	case digest == nil:
		return nil, invalid("file", "Give a file part or a digest field.")
	}
	return s.svc.Timestamps.VerifyEvidence(ctx, tsr, nil, digest)
}
