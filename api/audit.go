package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/cursor"
	"github.com/tenantry/tenantry/permission"
)

// auditActions names the action recorded for each state-changing
// operation. The names are part of the audit trail's contract: clients
// filter on them, so an operation id may change but its action may not.
// An operation missing here is recorded under its operation id.
var auditActions = map[string]string{ //nolint:gochecknoglobals // read-only table
	"register":                  "auth.register",
	"login":                     "auth.login",
	"refresh":                   "auth.refresh",
	"logout":                    "auth.logout",
	"update-me":                 "user.update",
	"change-my-password":        "user.password_change",
	"revoke-my-session":         "user.session.revoke",
	"revoke-my-other-sessions":  "user.sessions.revoke_others",
	"revoke-user-sessions":      "admin.user.sessions.revoke",
	"create-tenant":             "tenant.create",
	"update-tenant":             "tenant.update",
	"delete-tenant":             "tenant.delete",
	"add-tenant-member":         "tenant.member.add",
	"change-tenant-member-role": "tenant.member.role_change",
	"remove-tenant-member":      "tenant.member.remove",
	"upload-document":           "document.upload",
	"update-document":           "document.update",
	"delete-document":           "document.delete",
	"delete-file":               "file.delete",
	"delete-file-alias":         "file.delete",
	"create-sso-config":         "sso.config.create",
	"update-sso-config":         "sso.config.update",
	"delete-sso-config":         "sso.config.delete",
	"enable-sso-config":         "sso.config.enable",
	"disable-sso-config":        "sso.config.disable",
	"set-sso-auto-provisioning": "sso.config.auto_provisioning",
	"sso-callback":              "auth.sso.login",
	"sso-callback-azure":        "auth.sso.login",
	"sso-exchange":              "auth.sso.exchange",
	"sso-link":                  "auth.sso.link",
	"sso-detect":                "auth.sso.detect",
	"sso-refresh":               "auth.sso.refresh",
	"sso-logout":                "auth.sso.logout",
	"claim-tenant-domain":       "tenant.domain.claim",
	"verify-tenant-domain":      "tenant.domain.verify",
	"password-reset-request":    "auth.password_reset_request",
	"password-reset-confirm":    "auth.password_reset",
	"verify-email":              "auth.verify_email",
	"resend-verification":       "auth.resend_verification",
	"create-invitation":         "tenant.invitation.create",
	"revoke-invitation":         "tenant.invitation.revoke",
	"resend-invitation":         "tenant.invitation.resend",
	"accept-invitation":         "tenant.invitation.accept",
	"update-timestamping":       "timestamping.update",
	"create-file-timestamp":     "file.timestamp.create",
	"bulk-timestamp-files":      "file.timestamp.bulk",
	"verify-file-timestamp":     "file.timestamp.verify",
	"verify-timestamp-evidence": "timestamp.verify",
	"impersonate-user":          "admin.impersonate",
	"end-impersonation":         "auth.end_impersonation",
	"admin-create-user":         "admin.user.create",
	"admin-deactivate-user":     "admin.user.deactivate",
	"admin-activate-user":       "admin.user.activate",
	"admin-unlock-user":         "admin.user.unlock",
	"admin-deactivate-tenant":   "admin.tenant.deactivate",
	"admin-activate-tenant":     "admin.tenant.activate",
	"admin-restore-tenant":      "admin.tenant.restore",
	"admin-set-tenant-quotas":   "admin.tenant.quotas",
}

// auditMetadataKey marks the operations audited although they change
// nothing by their method: a sign-in's callback is a GET.
const auditMetadataKey = "audit"

// auditEmailOperations are the operations whose entry records the email
// the request named, so that failed logins can be traced to the account
// they were aimed at. Nothing else of their bodies is kept.
var auditEmailOperations = map[string]bool{"login": true, "register": true, "password-reset-request": true, "resend-verification": true} //nolint:gochecknoglobals // read-only table

// auditPathTargets are the path parameters that name an entry's target,
// most specific first.
var auditPathTargets = []struct{ param, kind string }{ //nolint:gochecknoglobals // read-only table
	{"invitation_id", "invitation"},
	{"document_id", "document"},
	{"file_id", "file"},
	{"user_id", "user"},
	{"tenant_id", "tenant"},
}

// Bounds on what the recorder keeps of a request's body and of an error
// response: enough for an email and an error envelope.
const (
	auditRequestCapture = 4 << 10
	auditErrorCapture   = 8 << 10
)

// auditWriteTimeout bounds the wait for the audit entry of a request whose
// client may already have gone.
const auditWriteTimeout = 10 * time.Second

func stateChanging(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// recordAudit writes the audit entry of every state-changing operation. It
// runs outside authentication, so refused tokens are recorded too, and
// writes once the handler has written its answer into the response but
// before the response ends: a client that received the whole answer knows
// its entry is stored. Services add to the entry through the audit.Record
// this puts in the request's context.
func (s *Server) recordAudit(ctx huma.Context, next func(huma.Context)) {
	if !s.audits(ctx) {
		next(ctx)
		return
	}
	s.audited(ctx, next)
}

// audits reports whether recordAudit records the request of ctx.
func (s *Server) audits(ctx huma.Context) bool {
	return s.svc.Audit != nil && (stateChanging(ctx.Method()) || ctx.Operation().Metadata[auditMetadataKey] == true)
}

// audited runs next and records the request's entry.
func (s *Server) audited(ctx huma.Context, next func(huma.Context)) {
	if s.svc.Audit == nil {
		next(ctx)
		return
	}
	actx, rec := audit.NewContext(ctx.Context())
	c := &auditContext{humaContext: ctx, errBody: capture{max: auditErrorCapture}}
	if auditEmailOperations[ctx.Operation().OperationID] {
		c.request = &capture{max: auditRequestCapture}
	}
	completed := false
	defer func() {
		if !completed {
			// The handler panicked; the outermost layer answers 500.
			s.writeAudit(actx, c, rec, http.StatusInternalServerError)
		}
	}()
	next(huma.WithContext(c, actx))
	completed = true
	s.writeAudit(actx, c, rec, c.Status())
}

// writeAudit builds and appends the entry of a finished request. A failure
// is logged and goes no further: the action itself has happened, and its
// answer must not change because its record could not be written.
func (s *Server) writeAudit(ctx context.Context, c *auditContext, rec *audit.Record, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	meta := tenantry.RequestMetaFromContext(ctx)
	e := &audit.Entry{
		Action:    cmpOr(rec.Action(), auditAction(c.Operation().OperationID)),
		ActorID:   rec.ActorID(),
		ClientIP:  meta.ClientIP,
		UserAgent: meta.UserAgent,
		RequestID: meta.RequestID,
	}
	info := infoFrom(ctx)
	if info != nil && info.userID != "" {
		// The authenticated caller is who acted, whatever else was noted.
		e.ActorID = info.userID
	}
	var impersonator string
	if info != nil {
		impersonator = info.impersonatorID
	}

	// A tenant named by the route gets the entry only when the caller may
	// see it: a stranger probing a tenant's URLs must not write into its
	// chain, nor learn from it that the tenant exists.
	routeTenant, _ := canonicalID(c.Param("tenant_id"))
	if routeTenant == "" && info != nil {
		routeTenant = info.tenantID // a tenant the request created
	}
	e.Chain = audit.PlatformChain
	hidden := false
	if t := rec.TenantID(); t != "" {
		e.Chain = t
	} else if routeTenant != "" {
		if status < 400 || s.mayAccess(c.Context(), routeTenant, e.ActorID) {
			e.Chain = routeTenant
		} else {
			hidden = true
		}
	}
	e.Outcome = auditOutcome(status, hidden)
	if o := rec.Outcome(); o != "" {
		e.Outcome = o
	}

	e.TargetType, e.TargetID = rec.Target()
	if e.TargetType == "" && e.TargetID == "" {
		e.TargetType, e.TargetID = pathTarget(c, routeTenant)
	}

	details := rec.Details()
	if details == nil {
		details = map[string]json.RawMessage{}
	}
	if email := c.requestEmail(); email != "" {
		if _, ok := details["email"]; !ok {
			details["email"], _ = json.Marshal(email)
		}
	}
	if impersonator != "" {
		details["impersonator_id"], _ = json.Marshal(impersonator)
	}
	details["status"], _ = json.Marshal(status)
	if status >= 400 {
		if code := c.errorCode(); code != "" {
			details["error_code"], _ = json.Marshal(code)
		}
	}
	// Annotations were each encoded when made, so this cannot fail.
	e.Details, _ = json.Marshal(details)

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditWriteTimeout)
	defer cancel()
	if err := s.svc.Audit.Append(wctx, e); err != nil {
		loggerFrom(ctx, s.logger).ErrorContext(ctx, "writing audit entry", "action", e.Action, "chain", e.Chain,
			"outcome", e.Outcome, "error", err)
	}
}

func auditAction(operationID string) string {
	if a, ok := auditActions[operationID]; ok {
		return a
	}
	return operationID
}

// auditOutcome classifies a response. A 404 for a tenant the caller may not
// see is a refusal like a 403; any other 404 is a plain failure.
func auditOutcome(status int, tenantHidden bool) string {
	switch {
	case status >= 500:
		return audit.OutcomeError
	case status == http.StatusUnauthorized || status == http.StatusForbidden,
		status == http.StatusNotFound && tenantHidden:
		return audit.OutcomeDenied
	case status >= 400:
		return audit.OutcomeFailure
	}
	return audit.OutcomeSuccess
}

// mayAccess reports whether the user belongs to the active tenant. It asks
// with a bare context, which carries the user as principal, so that the
// question leaves no trace in the request's record.
func (s *Server) mayAccess(ctx context.Context, tenantID, userID string) bool {
	if userID == "" || s.svc.Tenants == nil {
		return false
	}
	ctx = tenantry.NewContextWithPrincipal(context.WithoutCancel(ctx), tenantry.Principal{UserID: userID})
	_, err := s.svc.Tenants.Authorize(ctx, tenantID, permission.TenantRead)
	return err == nil
}

// pathTarget names the target from the most specific id in the path, or
// the tenant the request concerns.
func pathTarget(c huma.Context, tenantID string) (string, string) {
	for _, t := range auditPathTargets {
		if v := c.Param(t.param); v != "" {
			if id, ok := canonicalID(v); ok {
				return t.kind, id
			}
			return t.kind, v // refused with 400; recorded as asked
		}
	}
	if tenantID != "" {
		return "tenant", tenantID
	}
	return "", ""
}

// humaContext names the embedded context without hiding its Context method
// behind a field of that name.
type humaContext = huma.Context

// auditContext is the request's huma context with copies of the little the
// recorder needs from the bodies: the request's, for operations that record
// an email, and the response's when it is an error, for its code.
type auditContext struct {
	humaContext
	request *capture
	errBody capture
}

// Unwrap lets humago.Unwrap reach the adapter's context (the upload reads
// the raw request).
func (c *auditContext) Unwrap() huma.Context { return c.humaContext }

// BodyReader implements huma.Context.
func (c *auditContext) BodyReader() io.Reader {
	r := c.humaContext.BodyReader()
	if c.request == nil || r == nil {
		return r
	}
	return &teeBody{r: r, copy: c.request}
}

// BodyWriter implements huma.Context. huma sets the status before it
// writes a body, so an error body is known to be one from its first byte.
func (c *auditContext) BodyWriter() io.Writer {
	w := c.humaContext.BodyWriter()
	if c.Status() < 400 {
		return w
	}
	return io.MultiWriter(w, &c.errBody)
}

// requestEmail returns the email field of the request body, normalised as
// the account service does, or "" when there is none.
func (c *auditContext) requestEmail() string {
	if c.request == nil {
		return ""
	}
	var body struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(c.request.buf, &body) != nil {
		return ""
	}
	email := strings.ToLower(strings.TrimSpace(body.Email))
	if len(email) > 255 {
		return ""
	}
	return email
}

// errorCode returns the code of the error envelope written, if any.
func (c *auditContext) errorCode() string {
	var env struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(c.errBody.buf, &env) != nil {
		return ""
	}
	return env.Error.Code
}

// capture keeps the first max bytes written to it and drops the rest
// without complaint, so that a writer it is teed from never fails.
type capture struct {
	buf []byte
	max int
}

func (c *capture) Write(p []byte) (int, error) {
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// teeBody copies what is read from a request body, and closes the body
// when huma closes it.
type teeBody struct {
	r    io.Reader
	copy *capture
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	_, _ = t.copy.Write(p[:n])
	return n, err
}

func (t *teeBody) Close() error {
	if c, ok := t.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// AuditFilters selects and pages audit entries; every audit listing takes
// them. It is exported because huma reads parameters only from exported
// embedded structs.
type AuditFilters struct {
	CursorPaging
	Actor  resourceID `query:"actor" doc:"Only entries of this user's actions."`
	Action text       `query:"action" maxLength:"128" doc:"Only entries of this action, such as tenant.member.role_change." example:"auth.login"`
	From   time.Time  `query:"from" doc:"Only entries at or after this time (RFC 3339)."`
	To     time.Time  `query:"to" doc:"Only entries before this time (RFC 3339)."`
}

type auditListInput struct {
	TenantPath
	AuditFilters
}

type auditEntryView struct {
	ID         string          `json:"id"`
	Chain      string          `json:"chain" doc:"The tenant's id, or platform."`
	Seq        int64           `json:"seq" doc:"Position in the chain, from 1."`
	OccurredAt time.Time       `json:"occurred_at"`
	ActorID    *string         `json:"actor_id" doc:"The user who acted; null when unknown."`
	Action     string          `json:"action" example:"tenant.member.role_change"`
	TargetType *string         `json:"target_type" example:"user"`
	TargetID   *string         `json:"target_id"`
	Outcome    string          `json:"outcome" enum:"success,failure,denied,error"`
	ClientIP   string          `json:"client_ip"`
	UserAgent  string          `json:"user_agent"`
	RequestID  string          `json:"request_id"`
	Details    json.RawMessage `json:"details" doc:"JSON object: status, error_code of failures, before and after values, and other facts the action recorded."`
	PrevHash   string          `json:"prev_hash" doc:"Hash of the entry before this one in the chain."`
	Hash       string          `json:"hash" doc:"SHA-256 over prev_hash and this entry's fields, hex."`
}

type auditList struct {
	Entries    []auditEntryView `json:"entries"`
	Pagination pagination       `json:"pagination"`
}

type brokenView struct {
	// Null when the chain is intact.
	_      struct{} `nullable:"true"`
	Seq    int64    `json:"seq"`
	ID     *string  `json:"id" doc:"The entry found wrong; null when it is missing altogether."`
	Reason string   `json:"reason"`
}

type auditVerification struct {
	Chain       string      `json:"chain"`
	Entries     int64       `json:"entries" doc:"How many entries were checked."`
	Intact      bool        `json:"intact"`
	FirstBroken *brokenView `json:"first_broken" doc:"The first entry found edited, missing or out of place; null when intact."`
}

// scopeTime is how a time filter binds a cursor: the instant, or nothing.
func scopeTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func viewAuditEntry(e *audit.Entry) auditEntryView {
	return auditEntryView{
		ID: e.ID, Chain: e.Chain, Seq: e.Seq, OccurredAt: e.OccurredAt.UTC(), ActorID: nullIfEmpty(e.ActorID),
		Action: e.Action, TargetType: nullIfEmpty(e.TargetType), TargetID: nullIfEmpty(e.TargetID), Outcome: e.Outcome,
		ClientIP: e.ClientIP, UserAgent: e.UserAgent, RequestID: e.RequestID, Details: e.Details,
		PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

func (s *Server) registerAudit() {
	tags := []string{"Audit"}
	base := "/api/tenants/{tenant_id}/audit"

	huma.Register(s.api, requires(permission.AuditRead, huma.Operation{
		OperationID: "list-audit-entries", Method: http.MethodGet, Path: base, Tags: tags,
		Summary: "The tenant's audit trail, newest first (admins)",
		Description: "Every state-changing request concerning the tenant and every security event in it, with who, " +
			"what, the outcome and where from. Walk deep listings by cursor (next_cursor), which costs the same at any depth.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *auditListInput) (*response[auditList], error) {
		tenantID := in.id(ctx)
		if _, err := s.svc.Tenants.Authorize(ctx, tenantID, permission.AuditRead); err != nil {
			return nil, err
		}
		return s.listAudit(ctx, tenantID, &in.AuditFilters)
	})

	huma.Register(s.api, requires(permission.AuditRead, huma.Operation{
		OperationID: "verify-audit-chain", Method: http.MethodGet, Path: base + "/verify", Tags: tags,
		Summary: "Check that the tenant's audit trail is intact (admins)",
		Description: "Recomputes the hash chain and reports the first entry edited, deleted, inserted or out of place. " +
			"A broken chain is reported in the data, with status 200.",
		Errors: []int{http.StatusBadRequest, http.StatusNotFound},
	}), func(ctx context.Context, in *TenantPath) (*response[auditVerification], error) {
		tenantID := in.id(ctx)
		if _, err := s.svc.Tenants.Authorize(ctx, tenantID, permission.AuditRead); err != nil {
			return nil, err
		}
		return s.verifyAuditChain(ctx, tenantID)
	})
}

// listAudit answers a listing of one chain's entries, once the caller was
// found allowed to read it.
func (s *Server) listAudit(ctx context.Context, chain string, in *AuditFilters) (*response[auditList], error) {
	if !in.From.IsZero() && !in.To.IsZero() && !in.From.Before(in.To) {
		return nil, tenantry.Errorf(tenantry.EBadRequest, "from must be before to")
	}
	// The chain is in the scope: a cursor of one chain's listing is
	// refused on another's.
	scope := cursor.Scope{"audit", chain, in.Actor.String(), string(in.Action), scopeTime(in.From), scopeTime(in.To)}
	from, err := s.resume(scope, in.CursorPaging)
	if err != nil {
		return nil, err
	}
	f := audit.Filter{ActorID: in.Actor.String(), Action: string(in.Action), From: in.From, To: in.To, Page: in.Page, PerPage: in.PerPage}
	page, total := in.Page, int64(0)
	if from != nil {
		if f.BeforeSeq, err = strconv.ParseInt(from.Key, 10, 64); err != nil || f.BeforeSeq < 1 {
			return nil, cursor.ErrInvalid
		}
		page, total = from.Page, from.Total
	}
	l, err := s.svc.Audit.ListPage(ctx, chain, f)
	if err != nil {
		return nil, err
	}
	if l.Total >= 0 {
		total = l.Total
	}
	var next *cursor.Position
	if l.NextBeforeSeq > 0 {
		next = &cursor.Position{Key: strconv.FormatInt(l.NextBeforeSeq, 10)}
	}
	out := auditList{Entries: make([]auditEntryView, len(l.Entries)), Pagination: s.paginate(scope, page, in.PerPage, total, next)}
	for i := range l.Entries {
		out.Entries[i] = viewAuditEntry(&l.Entries[i])
	}
	return ok("Audit entries retrieved successfully", out), nil
}

// verifyAuditChain answers the verification of one chain, once the caller
// was found allowed to read it.
func (s *Server) verifyAuditChain(ctx context.Context, chain string) (*response[auditVerification], error) {
	v, err := s.svc.Audit.Verify(ctx, chain)
	if err != nil {
		return nil, err
	}
	out := auditVerification{Chain: v.Chain, Entries: v.Entries, Intact: v.Intact}
	if b := v.FirstBroken; b != nil {
		out.FirstBroken = &brokenView{Seq: b.Seq, ID: nullIfEmpty(b.ID), Reason: b.Reason}
	}
	return ok("Audit chain verified", out), nil
}
