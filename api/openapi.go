package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/yaml"

	"github.com/tenantry/tenantry/quota"
)

// The OpenAPI document is generated from the handlers' types, then finished
// here with what no single handler knows: the tags, the server, the error
// responses every operation can give and the security of public operations.
// It is served as OpenAPI 3.1 and, for tools that read only 3.0, as a 3.0
// rendering of the same document.

// apiTags are the groups operations are filed under, in the order the
// documentation lists them. Every tag an operation uses must be here.
func apiTags() []*huma.Tag {
	return []*huma.Tag{
		{Name: "Health", Description: "Liveness and readiness of the service and of each API area."},
		{Name: "Authentication", Description: "Accounts, sign-in with email and password, token refresh and sign-out."},
		{Name: "Users", Description: "The signed-in user's profile, password, tenants, sessions and security history."},
		{Name: "Tenants", Description: "Tenants, each with its own database, and their members and roles."},
		{Name: "Roles and permissions", Description: "The permission catalogue, a tenant's built-in and custom roles, and a member's effective permissions."},
		{Name: "Invitations", Description: "Invitations to join a tenant, mailed to an address, and accepting them."},
		{Name: "Documents", Description: "A tenant's documents: upload, listing, metadata, downloads and download links."},
		{Name: "Files", Description: "The distinct contents a tenant stores, shared by the documents that have the same bytes."},
		{Name: "Timestamps", Description: "Trusted time-stamps (RFC 3161) of a tenant's files: settings, status, tokens, verification and evidence."},
		{Name: "Events", Description: "A tenant's event stream, the same events that are published to Kafka."},
		{Name: "Audit", Description: "A tenant's tamper-evident audit trail."},
		{Name: "Single sign-on", Description: "Sign-in through a tenant's identity provider (Microsoft Entra ID, Google Workspace or any OpenID Connect provider), its configuration, identities and the tenant's verified email domains."},
		{Name: "Mail", Description: "The mails tenantry sends and how their delivery went (platform administrators)."},
		{Name: "Administration", Description: "Platform administration: accounts, tenants, statistics and acting as a user (platform administrators; to anyone else these routes do not exist)."},
	}
}

// schemaName names a component schema: huma's name for the type, reduced to
// the characters OpenAPI allows in component names. Generic instantiations
// would otherwise yield names with spaces and braces.
func schemaName(t reflect.Type, hint string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return -1
	}, huma.DefaultSchemaNamer(t, hint))
}

// errorResponse documents an error answered in the envelope.
func (s *Server) errorResponse(status int, description string) *huma.Response {
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[errorEnvelope](), true, "Error")
	r := &huma.Response{
		Description: description,
		Content:     map[string]*huma.MediaType{"application/json": {Schema: schema}},
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		r.Headers = map[string]*huma.Header{"Retry-After": {
			Description: "Seconds to wait before trying again.",
			Schema:      &huma.Schema{Type: huma.TypeInteger, Minimum: new(float64(1))},
		}}
	}
	return r
}

// quotaMetadataKey marks the operations that a tenant's quotas may refuse.
const quotaMetadataKey = "tenantry-quota"

// quotaLimited marks an operation that a tenant's quotas may refuse.
func quotaLimited(op huma.Operation) huma.Operation {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata[quotaMetadataKey] = true
	return op
}

type quotaErrorObject struct {
	Code    string        `json:"code" enum:"QUOTA_EXCEEDED"`
	Message string        `json:"message" doc:"Human-readable explanation."`
	Details quota.Details `json:"details"`
}

// quotaExceededEnvelope documents the error of an exceeded quota.
type quotaExceededEnvelope struct {
	Success bool             `json:"success" doc:"Always false for errors."`
	Error   quotaErrorObject `json:"error"`
}

// documentQuotaExceeded adds QUOTA_EXCEEDED, with its details, to a 403.
func (s *Server) documentQuotaExceeded(r *huma.Response) {
	registry := s.api.OpenAPI().Components.Schemas
	r.Description += " QUOTA_EXCEEDED: the change would take the tenant past one of its quotas; details gives " +
		"the quota (storage, documents or members), its limit and what is used (bytes for storage)."
	r.Content["application/json"].Schema = &huma.Schema{AnyOf: []*huma.Schema{
		registry.Schema(reflect.TypeFor[errorEnvelope](), true, "Error"),
		registry.Schema(reflect.TypeFor[quotaExceededEnvelope](), true, "QuotaExceededError"),
	}}
}

// errorDescriptions explain the errors every operation may give. The codes
// are the envelope's error.code values.
var errorDescriptions = map[int]string{ //nolint:gochecknoglobals // read-only table
	http.StatusBadRequest: "BAD_REQUEST: malformed JSON or an invalid parameter (details names each); " +
		"VALIDATION_ERROR: invalid body fields (details maps each field to its messages).",
	http.StatusUnauthorized:          "UNAUTHORIZED, TOKEN_EXPIRED, TOKEN_REVOKED or INVALID_CREDENTIALS.",
	http.StatusForbidden:             "FORBIDDEN (your role does not allow this) or ACCOUNT_INACTIVE.",
	http.StatusNotFound:              "NOT_FOUND, also for a tenant you are not a member of.",
	http.StatusConflict:              "CONFLICT.",
	http.StatusRequestEntityTooLarge: "PAYLOAD_TOO_LARGE: the request body is larger than allowed.",
	http.StatusUnsupportedMediaType:  "UNSUPPORTED_MEDIA_TYPE: the request body is not of the documented type.",
	http.StatusLocked:                "ACCOUNT_LOCKED: too many failed attempts; try again later.",
	http.StatusRequestedRangeNotSatisfiable: "BAD_REQUEST: the requested range lies outside the content; " +
		"Content-Range gives its size.",
	http.StatusTooManyRequests:     "RATE_LIMITED: too many requests from this address; see Retry-After.",
	http.StatusInternalServerError: "INTERNAL_ERROR. The message never carries internal details.",
}

// finishDocument completes the generated document. It runs once, after
// every operation is registered and before the document is first served.
func (s *Server) finishDocument() {
	oapi := s.api.OpenAPI()
	oapi.Tags = apiTags()
	server := &huma.Server{URL: "/", Description: "The server this document is served by."}
	if s.cfg.PublicURL != "" {
		server = &huma.Server{URL: strings.TrimSuffix(s.cfg.PublicURL, "/"), Description: "This installation."}
	}
	oapi.Servers = []*huma.Server{server}
	oapi.Info.License = &huma.License{Name: "MIT", URL: "https://opensource.org/license/mit"}

	for _, item := range oapi.Paths {
		for _, op := range []*huma.Operation{item.Get, item.Put, item.Post, item.Delete, item.Patch} {
			if op != nil {
				s.finishOperation(op)
			}
		}
	}
	for _, schema := range oapi.Components.Schemas.Map() {
		moveRefDescriptions(oapi.Components.Schemas, schema)
	}
}

func (s *Server) finishOperation(op *huma.Operation) {
	if op.Security == nil {
		// Public: say so, rather than leave readers to guess.
		op.Security = []map[string][]string{}
	}
	// huma documents 422 for validation failures; tenantry answers those
	// with 400 (BAD_REQUEST or VALIDATION_ERROR).
	delete(op.Responses, "422")
	statuses := []int{http.StatusInternalServerError}
	if len(op.Parameters) > 0 {
		statuses = append(statuses, http.StatusBadRequest)
	}
	if op.RequestBody != nil {
		statuses = append(statuses, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	for status, r := range op.Responses {
		if code, err := strconv.Atoi(status); err == nil && code >= 400 && r.Content["application/json"] != nil {
			statuses = append(statuses, code)
		}
	}
	for _, status := range slices.Compact(slices.Sorted(slices.Values(statuses))) {
		description := errorDescriptions[status]
		if description == "" {
			description = strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")) + "."
		}
		op.Responses[strconv.Itoa(status)] = s.errorResponse(status, description)
	}
	if op.Metadata[quotaMetadataKey] == true {
		s.documentQuotaExceeded(op.Responses[strconv.Itoa(http.StatusForbidden)])
	}
	op.Responses["default"] = s.errorResponse(http.StatusServiceUnavailable,
		"Any other error, in the same envelope: SERVICE_UNAVAILABLE (503) when a dependency is down or overloaded, for example.")
	for _, r := range op.Responses {
		for name, h := range r.Headers {
			if h.Description == "" && h.Schema != nil {
				h.Description = h.Schema.Description
			}
			if name == "Cache-Control" {
				h.Required = true
			}
		}
	}
}

// moveRefDescriptions moves the description of a property that refers to a
// component onto that component: OpenAPI 3.0 ignores (and linters refuse)
// anything beside a $ref.
func moveRefDescriptions(registry huma.Registry, schema *huma.Schema) {
	for _, p := range schema.Properties {
		if p.Ref == "" || p.Description == "" {
			continue
		}
		if target := registry.SchemaFromRef(p.Ref); target != nil && target.Description == "" {
			target.Description = p.Description
		}
		p.Description = ""
	}
}

// openAPIDocument renders the finished document in each of its served
// forms, once.
type openAPIDocument struct {
	once  sync.Once
	forms map[string][]byte
	err   error
}

// openAPIForms maps each served path to its media type.
var openAPIForms = map[string]string{ //nolint:gochecknoglobals // read-only table
	openAPIPath + ".json":     "application/openapi+json",
	openAPIPath + ".yaml":     "application/openapi+yaml",
	openAPIPath + "-3.0.json": "application/openapi+json",
	openAPIPath + "-3.0.yaml": "application/openapi+yaml",
}

func (s *Server) registerOpenAPI() {
	for path := range openAPIForms {
		s.mux.HandleFunc("GET "+path, s.serveOpenAPI)
	}
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	d := &s.document
	d.once.Do(func() { d.forms, d.err = renderOpenAPI(s.api.OpenAPI()) })
	if d.err != nil {
		writeError(w, r, s.logger, fmt.Errorf("render the OpenAPI document: %w", d.err))
		return
	}
	w.Header().Set("Content-Type", openAPIForms[r.URL.Path])
	_, _ = w.Write(d.forms[r.URL.Path])
}

// renderOpenAPI renders the document as 3.1 and as 3.0, each in JSON and
// YAML. The 3.0 rendering is huma's downgrade without the keywords 3.0 does
// not have; patternDescription, which huma uses only for its own error
// messages, is left out of both.
func renderOpenAPI(oapi *huma.OpenAPI) (map[string][]byte, error) {
	v31, err := json.Marshal(oapi)
	if err != nil {
		return nil, err
	}
	v30, err := oapi.Downgrade()
	if err != nil {
		return nil, err
	}
	forms := map[string][]byte{}
	for _, f := range []struct {
		path     string
		doc      []byte
		dropKeys []string
	}{
		{openAPIPath, v31, []string{"patternDescription"}},
		{openAPIPath + "-3.0", v30, []string{"patternDescription", "contentMediaType"}},
	} {
		var tree any
		if err := json.Unmarshal(f.doc, &tree); err != nil {
			return nil, err
		}
		dropKeywords(tree, f.dropKeys)
		doc, err := json.Marshal(tree)
		if err != nil {
			return nil, err
		}
		var y bytes.Buffer
		if err := yaml.Convert(&y, bytes.NewReader(doc)); err != nil {
			return nil, err
		}
		forms[f.path+".json"], forms[f.path+".yaml"] = doc, y.Bytes()
	}
	return forms, nil
}

// dropKeywords removes schema keywords from a decoded document. A property
// that happens to bear such a name is kept: only keys beside "type" or
// "$ref", that is inside schemas, are removed.
func dropKeywords(v any, keys []string) {
	switch v := v.(type) {
	case map[string]any:
		_, typed := v["type"]
		_, ref := v["$ref"]
		if typed || ref {
			for _, k := range keys {
				if _, isSchema := v[k].(map[string]any); !isSchema {
					delete(v, k)
				}
			}
		}
		for _, child := range v {
			dropKeywords(child, keys)
		}
	case []any:
		for _, child := range v {
			dropKeywords(child, keys)
		}
	}
}
