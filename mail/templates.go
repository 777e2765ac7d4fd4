package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"strings"
	texttemplate "text/template"
)

// The kinds of mail tenantry sends, each a template.
const (
	KindWelcome       = "welcome"
	KindVerifyEmail   = "verify_email"
	KindPasswordReset = "password_reset"
	KindInvitation    = "invitation"
	KindSecurityAlert = "security_alert"
	// KindAccountExists goes to an address someone tried to register
	// again, instead of the answer saying it has an account.
	KindAccountExists = "account_exists"
	// KindTest is what `tenantry mail test` sends.
	KindTest = "test"
)

// Kinds lists every template.
var Kinds = []string{KindWelcome, KindVerifyEmail, KindPasswordReset, KindInvitation, KindSecurityAlert, KindAccountExists, KindTest} //nolint:gochecknoglobals // read-only list

// Locales are the languages of the templates; the first is the default.
var Locales = []string{"en", "fr"} //nolint:gochecknoglobals // read-only list

// DefaultLocale is the language of a user who chose none.
const DefaultLocale = "en"

// The security alerts, told apart by Data.Alert.
const (
	AlertPasswordChanged      = "password_changed"
	AlertPasswordReset        = "password_reset"
	AlertAccountLocked        = "account_locked"
	AlertNewSignIn            = "new_sign_in"
	AlertImpersonationStarted = "impersonation_started"
	AlertSSOLinked            = "sso_linked"
)

// ValidLocale reports whether templates exist in locale.
func ValidLocale(locale string) bool {
	for _, l := range Locales {
		if l == locale {
			return true
		}
	}
	return false
}

// Data is what templates are rendered with. Fields a kind does not use
// stay empty.
type Data struct {
	// AppName names the product in subjects and greetings.
	AppName string
	// AppURL is the customer's front end the links point into.
	AppURL string
	// Email is the recipient's address.
	Email     string
	FirstName string
	// Link is the one action the mail asks for (verify, reset, accept).
	Link string
	// TenantName, InviterName and Role describe an invitation.
	TenantName  string
	InviterName string
	Role        string
	// Alert is one of the Alert constants; ClientIP, UserAgent, Time and
	// Provider describe what happened.
	Alert     string
	ClientIP  string
	UserAgent string
	Time      string
	Provider  string
}

//go:embed templates
var embedded embed.FS

// Rendered is a template rendered for one recipient.
type Rendered struct {
	Subject, Text, HTML string
}

type set struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Templates renders every kind in every locale.
type Templates struct {
	sets map[string]*set // by locale + "/" + kind
}

// LoadTemplates parses the embedded templates, each replaced by the file of
// the same path under dir when dir is not empty and has one
// (dir/fr/invitation.html, say). Every template is rendered once with
// sample data, so that a broken override stops the start rather than a
// mail.
func LoadTemplates(dir string) (*Templates, error) {
	var override fs.FS
	if dir != "" {
		info, err := os.Stat(dir)
		if err != nil || !info.IsDir() {
			return nil, fmt.Errorf("TENANTRY_MAIL_TEMPLATES_DIR: %s is not a directory", dir)
		}
		override = os.DirFS(dir)
	}
	read := func(name string) (string, error) {
		if override != nil {
			b, err := fs.ReadFile(override, name)
			if err == nil {
				return string(b), nil
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("mail template %s: %w", name, err)
			}
		}
		b, err := embedded.ReadFile(path.Join("templates", name))
		if err != nil {
			return "", fmt.Errorf("mail template %s: %w", name, err)
		}
		return string(b), nil
	}
	t := &Templates{sets: map[string]*set{}}
	for _, locale := range Locales {
		layout, err := read(locale + "/layout.html")
		if err != nil {
			return nil, err
		}
		for _, kind := range Kinds {
			s := &set{}
			base := locale + "/" + kind
			src, err := read(base + ".subject.txt")
			if err != nil {
				return nil, err
			}
			if s.subject, err = texttemplate.New(base + ".subject.txt").Option("missingkey=error").Parse(strings.TrimSpace(src)); err != nil {
				return nil, fmt.Errorf("mail template: %w", err)
			}
			if src, err = read(base + ".txt"); err != nil {
				return nil, err
			}
			if s.text, err = texttemplate.New(base + ".txt").Option("missingkey=error").Parse(src); err != nil {
				return nil, fmt.Errorf("mail template: %w", err)
			}
			if src, err = read(base + ".html"); err != nil {
				return nil, err
			}
			h, err := htmltemplate.New(locale + "/layout.html").Option("missingkey=error").Parse(layout)
			if err != nil {
				return nil, fmt.Errorf("mail template: %w", err)
			}
			if s.html, err = h.New(base + ".html").Parse(src); err != nil {
				return nil, fmt.Errorf("mail template: %w", err)
			}
			t.sets[base] = s
			if _, err := t.Render(kind, locale, sample()); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

func sample() Data {
	return Data{AppName: "tenantry", AppURL: "https://app.example.com", Email: "ada@example.com", FirstName: "Ada",
		Link: "https://app.example.com/x?token=t", TenantName: "Acme", InviterName: "Grace Hopper",
		Role: "user", Alert: AlertNewSignIn, ClientIP: "192.0.2.1", UserAgent: "curl", Time: "now", Provider: "microsoft"}
}

// Render renders kind in locale (the default locale when locale has no
// templates).
func (t *Templates) Render(kind, locale string, d Data) (*Rendered, error) {
	if !ValidLocale(locale) {
		locale = DefaultLocale
	}
	s, ok := t.sets[locale+"/"+kind]
	if !ok {
		return nil, fmt.Errorf("mail: no template %q", kind)
	}
	var subject, text, html bytes.Buffer
	if err := s.subject.Execute(&subject, d); err != nil {
		return nil, fmt.Errorf("mail: render %s/%s subject: %w", locale, kind, err)
	}
	if err := s.text.Execute(&text, d); err != nil {
		return nil, fmt.Errorf("mail: render %s/%s text: %w", locale, kind, err)
	}
	if err := s.html.ExecuteTemplate(&html, "layout", d); err != nil {
		return nil, fmt.Errorf("mail: render %s/%s HTML: %w", locale, kind, err)
	}
	// A subject is one line, whatever a name in it held.
	return &Rendered{
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}
