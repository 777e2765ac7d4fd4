package sso

import (
	"net/url"
	"strings"
	"testing"

	"github.com/tenantry/tenantry"
)

func TestRedirectAllowed(t *testing.T) {
	t.Parallel()
	allowed := []string{"https://app.example.com/sso", "http://127.0.0.1:3000/"}
	for target, want := range map[string]bool{
		"https://app.example.com/sso":             true,
		"https://app.example.com/sso/done?x=1":    true,
		"https://APP.example.com/sso":             true,
		"http://127.0.0.1:3000/anything":          true,
		"https://app.example.com/ssox":            false,
		"https://app.example.com/":                false,
		"https://app.example.com.evil.net/sso":    false,
		"https://app.example.com@evil.net/sso":    false,
		"https://user@app.example.com/sso":        false,
		"http://app.example.com/sso":              false,
		"https://app.example.com/sso/../admin":    false,
		"https://app.example.com/sso/%2e%2e/x":    false,
		"//evil.net/sso":                          false,
		"https://app.example.com:444/sso":         false,
		"javascript:alert(1)":                     false,
		"https://app.example.com/sso\\@evil.net/": false,
		"http://127.0.0.1:3001/":                  false,
	} {
		if got := RedirectAllowed(target, allowed); got != want {
			t.Errorf("RedirectAllowed(%q) = %v, want %v", target, got, want)
		}
	}
}

func FuzzRedirectAllowed(f *testing.F) {
	allowed := []string{"https://app.example.com/sso"}
	for _, s := range []string{"https://app.example.com/sso/x", "https://evil.net", "https://app.example.com/sso/../x", "%", "https://app.example.com\\sso"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !RedirectAllowed(target, allowed) {
			return
		}
		// Whatever passes goes to the allowed host, under its path.
		u, err := url.Parse(target)
		if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, "app.example.com") || u.User != nil ||
			!(u.EscapedPath() == "/sso" || strings.HasPrefix(u.EscapedPath(), "/sso/")) || strings.Contains(u.Path, "/..") {
			t.Fatalf("RedirectAllowed admitted %q", target)
		}
	})
}

func TestRolesFromGroups(t *testing.T) {
	t.Parallel()
	a := AutoProvisioning{DefaultRole: tenantry.RoleViewer, GroupRoleMapping: map[string]tenantry.Role{"a": tenantry.RoleAdmin, "u": tenantry.RoleUser}}
	for _, c := range []struct {
		groups []string
		want   tenantry.Role
		mapped bool
	}{
		{nil, tenantry.RoleViewer, false},
		{[]string{"x"}, tenantry.RoleViewer, false},
		{[]string{"u"}, tenantry.RoleUser, true},
		{[]string{"u", "a"}, tenantry.RoleAdmin, true},
		{[]string{"a", "u"}, tenantry.RoleAdmin, true},
	} {
		if got, mapped := a.roleFor(c.groups); got != c.want || mapped != c.mapped {
			t.Errorf("roleFor(%v) = %s %v, want %s %v", c.groups, got, mapped, c.want, c.mapped)
		}
	}
	d := AutoProvisioning{AllowedEmailDomains: []string{"corp.com"}}
	for email, want := range map[string]bool{"a@corp.com": true, "a@CORP.com": true, "a@evilcorp.com": false, "a@sub.corp.com": false, "corp.com": false} {
		if got := d.domainAllowed(email); got != want {
			t.Errorf("domainAllowed(%q) = %v", email, got)
		}
	}
}

func TestIssuerURLs(t *testing.T) {
	t.Parallel()
	for raw, ok := range map[string]bool{
		"https://idp.example.com":        true,
		"https://idp.example.com/realms": true,
		"http://127.0.0.1:8080/oidc":     true,
		"http://[::1]:8080":              true,
		"http://localhost:9000":          true,
		"http://idp.example.com":         false,
		"https://u:p@idp.example.com":    false,
		"https://idp.example.com/?x=1":   false,
		"ftp://idp.example.com":          false,
		"idp.example.com":                false,
	} {
		if got := CheckIssuerURL(raw) == ""; got != ok {
			t.Errorf("CheckIssuerURL(%q) accepted = %v, want %v", raw, got, ok)
		}
	}
}
