package apptest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TLSURL serves the Env over HTTPS as well, once, and returns its base
// URL: browsers keep the Secure (__Host-) cookies of single sign-on only
// for HTTPS origins.
func (e *Env) TLSURL(t testing.TB) string {
	t.Helper()
	e.tlsOnce.Do(func() {
		e.tls = httptest.NewTLSServer(e.App.Server)
	})
	return e.tls.URL
}

// Browser is a client that keeps cookies, as a browser does, and goes
// where redirects point one step at a time. Every answer of tenantry's
// API is checked against the OpenAPI document.
type Browser struct {
	env    *Env
	client *http.Client
}

// NewBrowser returns a browser with an empty cookie jar that trusts the
// Env's HTTPS certificate.
func (e *Env) NewBrowser(t testing.TB) *Browser {
	t.Helper()
	e.TLSURL(t)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Browser{env: e, client: &http.Client{
		Transport:     e.tls.Client().Transport,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Get requests rawURL once, following no redirect.
func (b *Browser) Get(t testing.TB, rawURL string) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if strings.HasPrefix(rawURL, b.env.tls.URL+"/") {
		b.env.checkResponse(t, req, res, data)
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// Follow requests rawURL and follows redirects until an answer is not a
// redirect, or until the next location satisfies stop (when not nil),
// which is then returned unvisited as the last response's Location.
func (b *Browser) Follow(t testing.TB, rawURL string, stop func(*url.URL) bool) *Response {
	t.Helper()
	for range 10 {
		res := b.Get(t, rawURL)
		if res.Status < 300 || res.Status >= 400 {
			return res
		}
		next, err := url.Parse(rawURL)
		if err == nil {
			next, err = next.Parse(res.Header.Get("Location"))
		}
		if err != nil {
			t.Fatalf("bad redirect from %s: %v", rawURL, err)
		}
		if stop != nil && stop(next) {
			return res
		}
		rawURL = next.String()
	}
	t.Fatalf("too many redirects from %s", rawURL)
	return nil
}

// SetCookie stores a cookie set by an answer the browser did not receive
// itself (one read through Do, say), as a page's script would have had
// the browser do.
func (b *Browser) SetCookie(t testing.TB, setCookie string) {
	t.Helper()
	c, err := http.ParseSetCookie(setCookie)
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", setCookie, err)
	}
	u, err := url.Parse(b.env.tls.URL)
	if err != nil {
		t.Fatal(err)
	}
	b.client.Jar.SetCookies(u, []*http.Cookie{c})
}
