package api

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/tenantry/tenantry"
)

// Platform administration pages. The jobs dashboard replaces the original's
// Flower, which was exposed with admin:admin: here every request needs the
// access token of a platform administrator, sent as a bearer token by API
// clients or, for browsers, held in a cookie set by the login form below.
const (
	adminPrefix     = "/admin"
	adminJobsPath   = adminPrefix + "/jobs"
	adminLoginPath  = adminPrefix + "/login"
	adminLogoutPath = adminPrefix + "/logout"
	adminCookie     = "tenantry_admin"
)

func (s *Server) registerAdmin() {
	jobs := s.platformAdmin(s.svc.JobsUI)
	s.mux.Handle("GET "+adminJobsPath, jobs)
	s.mux.Handle(adminJobsPath+"/", jobs)
	s.mux.HandleFunc("GET "+adminLoginPath, s.adminLoginPage)
	s.mux.HandleFunc("POST "+adminLoginPath, s.adminLogin)
	s.mux.Handle("POST "+adminLogoutPath, s.platformAdmin(http.HandlerFunc(s.adminLogout)))
}

// platformAdmin lets through requests carrying a platform administrator's
// access token; others are sent to the login form (browsers) or refused.
func (s *Server) platformAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := bearerToken(r.Header.Get("Authorization"))
		if c, cerr := r.Cookie(adminCookie); err != nil && cerr == nil && c.Value != "" {
			token, err = c.Value, nil
		}
		var p tenantry.Principal
		if err == nil {
			p, err = s.svc.Accounts.Authenticate(r.Context(), token)
		}
		if err != nil {
			if wantsHTML(r) {
				http.Redirect(w, r, adminLoginPath+"?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			writeError(w, r, s.logger, err)
			return
		}
		if info := infoFrom(r.Context()); info != nil {
			info.userID = p.UserID
		}
		if err := requirePlatformAdmin(p); err != nil {
			writeError(w, r, s.logger, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(tenantry.NewContextWithPrincipal(r.Context(), p)))
	})
}

// requirePlatformAdmin decides who may use platform administration, the
// pages here and the /api/admin operations alike: platform administrators,
// and no one else, whatever their roles in tenants.
func requirePlatformAdmin(p tenantry.Principal) error {
	if !p.PlatformAdmin || p.ImpersonatorID != "" {
		return tenantry.Errorf(tenantry.EForbidden, "Platform administrators only")
	}
	return nil
}

func wantsHTML(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// loginPage is parsed once; templates are safe for concurrent use.
var loginPage = template.Must( //nolint:gochecknoglobals // read-only after parsing
	template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tenantry administration</title>
<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}label,input,button{display:block;width:100%;margin:.4rem 0}p.error{color:#b00}</style>
</head><body><h1>tenantry administration</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
<form method="post" action="` + adminLoginPath + `">
<input type="hidden" name="next" value="{{.Next}}">
<label>Email <input type="email" name="email" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></body></html>`))

type loginView struct {
	Error string
	Next  string
}

// safeNext keeps redirects after login inside the administration pages.
func safeNext(next string) string {
	if strings.HasPrefix(next, adminPrefix+"/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return adminJobsPath + "/"
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, v loginView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", noStore)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, v)
}

func (s *Server) adminLoginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, http.StatusOK, loginView{Next: safeNext(r.URL.Query().Get("next"))})
}

// adminLogin signs a platform administrator in from the form: the same
// checks, limits and lockout as the API's login, then the access token goes
// into a cookie scripts cannot read and other sites cannot send.
func (s *Server) adminLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	next := safeNext(r.PostFormValue("next"))
	ctx := r.Context()
	if err := s.limit(ctx, s.svc.LoginLimiter, "login"); err != nil {
		s.renderLogin(w, http.StatusTooManyRequests, loginView{Error: "Too many attempts; try again later.", Next: next})
		return
	}
	res, err := s.svc.Accounts.Login(ctx, r.PostFormValue("email"), r.PostFormValue("password"))
	if err != nil {
		te := toAPIError(ctx, loggerFrom(ctx, s.logger), err)
		s.renderLogin(w, te.status, loginView{Error: te.message, Next: next})
		return
	}
	p, err := s.svc.Accounts.Authenticate(ctx, res.AccessToken)
	if err != nil || !p.PlatformAdmin {
		// The session just opened is of no use here; end it at once.
		_ = s.svc.Accounts.Logout(tenantry.NewContextWithPrincipal(ctx, p))
		s.renderLogin(w, http.StatusForbidden, loginView{Error: "This account is not a platform administrator.", Next: next})
		return
	}
	// The answer sets the access token as a cookie: no cache may keep it.
	w.Header().Set("Cache-Control", noStore)
	http.SetCookie(w, &http.Cookie{
		Name: adminCookie, Value: res.AccessToken, Path: adminPrefix, MaxAge: res.ExpiresIn,
		HttpOnly: true, Secure: strings.HasPrefix(s.publicBase(ctx), "https://"), SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) adminLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.Accounts.Logout(r.Context()); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: adminCookie, Value: "", Path: adminPrefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, adminLoginPath, http.StatusSeeOther)
}
