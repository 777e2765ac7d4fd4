// Package api is tenantry's HTTP interface: routes, the response envelope,
// the mapping of errors to statuses, request logging and the OpenAPI document
// generated from the handlers' own types. Handlers decode, authenticate and
// encode; the rules live in the services they call.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/swaggest/swgui/v5emb"

	"github.com/tenantry/tenantry/account"
	"github.com/tenantry/tenantry/audit"
	"github.com/tenantry/tenantry/cursor"
	"github.com/tenantry/tenantry/document"
	"github.com/tenantry/tenantry/events"
	"github.com/tenantry/tenantry/mailer"
	"github.com/tenantry/tenantry/ratelimit"
	"github.com/tenantry/tenantry/sso"
	"github.com/tenantry/tenantry/tenant"
	"github.com/tenantry/tenantry/timestamping"
)

// Paths of the API documentation.
const (
	docsPath    = "/api/docs"
	openAPIPath = "/api/docs/openapi"
)

// ReadinessCheck is one dependency /ready verifies.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Config is what the HTTP layer needs besides the services.
type Config struct {
	Version     string
	CORSOrigins []string
	// TrustedProxies are the CIDR prefixes of proxies whose
	// X-Forwarded-For and X-Forwarded-Proto are believed.
	TrustedProxies []string
	// PublicURL, when set, is the base of the download links tenantry
	// signs; otherwise each request's own address is used.
	PublicURL      string
	MaxUploadBytes int64
	// BodyIdleTimeout cuts a request body that sends nothing for this
	// long; a body other than an upload must arrive whole within it.
	// Zero disables it.
	BodyIdleTimeout time.Duration
	// Metrics, when set, records every request and upload.
	Metrics   Metrics
	Logger    *slog.Logger
	Readiness []ReadinessCheck
	// CursorSecret signs the cursors of listings. Every process of a
	// deployment must share it, so that any of them continues a walk
	// another began.
	CursorSecret []byte
}

// Metrics records what the HTTP layer observes.
type Metrics interface {
	// ObserveRequest records an answered request by its route template.
	ObserveRequest(route, method string, status int, d time.Duration)
	// Uploaded records the size of an uploaded file.
	Uploaded(bytes int64)
}

// Services are the use cases the handlers call.
type Services struct {
	Accounts  *account.Service
	Tenants   *tenant.Service
	Documents *document.Service
	// Lifecycle, when set, lets platform administrators restore deleted
	// tenants.
	Lifecycle *tenant.Lifecycle
	// Audit, when set, records every state-changing request and serves
	// tenants' audit trails.
	Audit *audit.Log
	// SSO is single sign-on per tenant, with the tenants' domains.
	SSO *sso.Service
	// Events serves tenants' event streams.
	Events *events.Service
	// Timestamps serves files' trusted time-stamps.
	Timestamps *timestamping.Service
	// JobsUI is the jobs dashboard, served to platform administrators.
	JobsUI http.Handler
	// LoginLimiter and RegisterLimiter limit attempts per client address.
	LoginLimiter    ratelimit.Limiter
	RegisterLimiter ratelimit.Limiter
	// MailLimiter limits the requests that mail or use a mailed token per
	// client address; MailAddressLimiter the requests that mail, per
	// email address.
	MailLimiter        ratelimit.Limiter
	MailAddressLimiter ratelimit.Limiter
	// Mailer, when set, serves the mail deliveries to administrators.
	Mailer *mailer.Mailer
}

// Server routes and answers HTTP requests.
type Server struct {
	cfg     Config
	svc     Services
	logger  *slog.Logger
	clients clientAddr
	mux     *http.ServeMux
	api     huma.API
	handler http.Handler
	cursors *cursor.Codec
	// document is the OpenAPI document as served, rendered on first use.
	document openAPIDocument
}

// NewServer returns a server with every route registered.
func NewServer(cfg Config, svc Services) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	useEnvelopeErrors(cfg.Logger)
	s := &Server{cfg: cfg, svc: svc, logger: cfg.Logger, clients: newClientAddr(cfg.TrustedProxies), mux: http.NewServeMux(),
		cursors: cursor.NewCodec(cfg.CursorSecret)}

	hc := huma.DefaultConfig("tenantry API", cfg.Version)
	// No $schema links in bodies, no CDN-loaded docs page: the embedded
	// Swagger UI below serves the documentation.
	hc.CreateHooks = nil
	hc.DocsPath = ""
	hc.SchemasPath = ""
	// The document is served by registerOpenAPI, once finished.
	hc.OpenAPIPath = ""
	hc.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", schemaName)
	hc.Info.Description = "Multi-tenant SaaS backend: accounts, tenants with isolated databases, members and roles, documents, events and audit."
	hc.Info.Contact = &huma.Contact{Name: "The tenantry authors"}
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT"},
	}
	s.api = humago.New(s.mux, hc)
	s.api.UseMiddleware(s.noteRoute, s.recordAudit, s.authenticate)

	s.registerHealth()
	if svc.Accounts != nil {
		s.registerAuth()
		s.registerMailAuth()
		s.registerUsers()
		s.registerImpersonation()
		s.registerSessions()
	}
	if svc.Tenants != nil {
		s.registerTenants()
		s.registerRoles()
	}
	if svc.Tenants != nil && svc.Accounts != nil {
		s.registerInvitations()
	}
	if svc.Mailer != nil && svc.Accounts != nil {
		s.registerAdminMail()
	}
	if svc.Documents != nil {
		s.registerDocuments()
		s.registerFiles()
	}
	if svc.SSO != nil && svc.Tenants != nil && svc.Accounts != nil {
		s.registerSSOConfig()
		s.registerSSOAuth()
		s.registerSSOTokens()
		s.registerDomains()
	}
	if svc.Events != nil {
		s.registerEvents()
	}
	if svc.Timestamps != nil && svc.Tenants != nil {
		s.registerTimestamps()
	}
	if svc.JobsUI != nil && svc.Accounts != nil {
		s.registerAdmin()
	}
	if svc.Audit != nil && svc.Tenants != nil {
		s.registerAudit()
	}
	if svc.Accounts != nil && svc.Tenants != nil && svc.Documents != nil && svc.Lifecycle != nil {
		s.registerAdminUsers()
		s.registerAdminTenants()
		s.registerAdminStats()
	}
	if svc.Audit != nil && svc.Accounts != nil {
		s.registerAdminAudit()
	}
	s.finishDocument()
	s.registerOpenAPI()
	docs := v5emb.New("tenantry API", openAPIPath+".json", docsPath)
	s.mux.Handle("GET "+docsPath, docs)
	s.mux.Handle("GET "+docsPath+"/", docs)

	s.handler = s.observe(limitBodies(cfg.BodyIdleTimeout, secureHeaders(cors(cfg.CORSOrigins, http.HandlerFunc(s.route)))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// OpenAPI returns the generated OpenAPI document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// noteRoute records the operation's path template for the access log.
func (s *Server) noteRoute(ctx huma.Context, next func(huma.Context)) {
	if info := infoFrom(ctx.Context()); info != nil {
		info.route = ctx.Operation().Path
	}
	next(ctx)
}
