package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tenantry/tenantry"
)

// requestInfo collects what the access log reports about a request. Inner
// layers fill it in as they learn the route, the tenant and the user.
type requestInfo struct {
	id       string
	base     string // scheme://host the client used
	route    string
	tenantID string
	userID   string
	// impersonatorID is the administrator acting as userID, if any.
	impersonatorID string
	logger         *slog.Logger
}

type requestInfoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return info
}

// loggerFrom returns the request's logger (which carries the request id), or
// fallback outside a request.
func loggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if info := infoFrom(ctx); info != nil && info.logger != nil {
		return info.logger
	}
	return fallback
}

// saneRequestID accepts client-chosen request ids that are safe to log and
// echo: short, printable, no separators that could forge log structure.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// statusRecorder remembers the status written through it.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack is unused by tenantry's routes but kept so that wrapping never
// removes a capability of the server's writer.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := s.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijacking not supported")
	}
	return h.Hijack()
}

// observe assigns the request id, recovers panics and writes one access log
// line per request. It is the outermost layer, so it sees every response.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if !saneRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-ID", id)
		info := &requestInfo{id: id, base: s.clients.base(r), logger: s.logger.With("request_id", id)}
		rec := &statusRecorder{ResponseWriter: w}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		ctx = tenantry.NewContextWithRequestMeta(ctx, tenantry.RequestMeta{
			RequestID: id,
			ClientIP:  s.clients.of(r),
			BaseURL:   info.base,
			UserAgent: r.UserAgent(),
		})
		r = r.WithContext(ctx)

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				info.logger.Error("panic serving request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeAPIError(rec, &apiError{status: http.StatusInternalServerError, code: "INTERNAL_ERROR", message: internalMessage})
				}
			}
			s.logRequest(r, info, rec, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) logRequest(r *http.Request, info *requestInfo, rec *statusRecorder, d time.Duration) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	route := info.route
	if route == "" {
		route = r.Pattern
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.Int64("bytes", rec.written),
	}
	if info.tenantID != "" {
		attrs = append(attrs, slog.String("tenant_id", info.tenantID))
	}
	if info.userID != "" {
		attrs = append(attrs, slog.String("user_id", info.userID))
	}
	if s.cfg.Metrics != nil {
		if route == "" {
			// No route matched: the raw path is the client's to
			// choose, and would make a new series of every typo.
			route = "unmatched"
		}
		s.cfg.Metrics.ObserveRequest(route, r.Method, status, d)
	}
	level := slog.LevelInfo
	// A 503 is a dependency's outage, logged once where it is detected,
	// not once per request that meets it.
	if status >= 500 && status != http.StatusServiceUnavailable {
		level = slog.LevelError
	}
	info.logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// secureHeaders sets headers every response should carry.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// cors answers cross-origin requests from the configured origins only.
func cors(origins []string, next http.Handler) http.Handler {
	allowAny := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || (!allowAny && !slices.Contains(origins, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "X-Request-ID, Retry-After, Content-Disposition, ETag")
		if !allowAny {
			// Credentials are never combined with a wildcard: that
			// would let any site act with the user's cookies.
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID, Range")
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(time.Hour/time.Second)))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notFoundOrMethod answers requests no route matched, in the envelope. The
// mux knows whether the path exists for other methods; its own answer is
// captured only to learn which, then replaced.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	switch probe.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeAPIError(w, &apiError{status: http.StatusMethodNotAllowed, code: "METHOD_NOT_ALLOWED", message: "The method is not allowed for this resource"})
	case http.StatusMovedPermanently, http.StatusPermanentRedirect:
		// The mux's trailing-slash redirect for subtree patterns.
		http.Redirect(w, r, probe.header.Get("Location"), probe.status)
	default:
		writeAPIError(w, &apiError{status: http.StatusNotFound, code: "NOT_FOUND", message: "The requested resource was not found"})
	}
}

// headerProbe records a handler's status and headers and discards its body.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *headerProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
