package mail_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantry/tenantry/mail"
)

func TestEveryTemplateRendersInEveryLocale(t *testing.T) {
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	for _, locale := range mail.Locales {
		for _, kind := range mail.Kinds {
			r, err := tpl.Render(kind, locale, mail.Data{AppName: "Acme Cloud", AppURL: "https://app.example.com", Email: "ada@example.com",
				FirstName: "Ada", Link: "https://app.example.com/verify-email?token=abc", TenantName: "Acme", InviterName: "Grace", Role: "user",
				Alert: mail.AlertPasswordChanged, Time: "2026-01-01 10:00 UTC"})
			if err != nil {
				t.Fatalf("%s/%s: %v", locale, kind, err)
			}
			if r.Subject == "" || strings.Contains(r.Subject, "\n") || !strings.Contains(r.Text, "Acme Cloud") && kind != mail.KindWelcome {
				t.Errorf("%s/%s: subject %q, text %q", locale, kind, r.Subject, r.Text)
			}
			if !strings.Contains(r.HTML, `<html lang="`+locale+`">`) {
				t.Errorf("%s/%s: HTML is not in %s:\n%s", locale, kind, locale, r.HTML)
			}
			if strings.Contains(r.Text+r.HTML, "<no value>") {
				t.Errorf("%s/%s: a field is missing", locale, kind)
			}
		}
	}
	fr, _ := tpl.Render(mail.KindPasswordReset, "fr", mail.Data{AppName: "X", Link: "https://x/reset-password?token=t"})
	if !strings.Contains(fr.Subject, "Réinitialisez") {
		t.Errorf("French subject = %q", fr.Subject)
	}
	unknown, _ := tpl.Render(mail.KindPasswordReset, "de", mail.Data{AppName: "X"})
	if !strings.Contains(unknown.Subject, "Reset") {
		t.Errorf("an unknown locale should fall back to English: %q", unknown.Subject)
	}
}

func TestTemplatesEscapeWhatUsersChose(t *testing.T) {
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tpl.Render(mail.KindInvitation, "en", mail.Data{AppName: "X", TenantName: `<script>alert(1)</script>`,
		InviterName: "Eve\r\nBcc: victim@example.com", Link: "https://x/invitations/accept?token=t"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") {
		t.Errorf("HTML not escaped:\n%s", r.HTML)
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		t.Errorf("subject keeps a line break: %q", r.Subject)
	}
}

func TestTemplatesOverriddenFromADirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "fr"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fr", "welcome.subject.txt"), []byte("Salut {{.FirstName}} !"), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tpl.Render(mail.KindWelcome, "fr", mail.Data{FirstName: "Ada"})
	if r.Subject != "Salut Ada !" {
		t.Errorf("overridden subject = %q", r.Subject)
	}
	r, _ = tpl.Render(mail.KindWelcome, "en", mail.Data{FirstName: "Ada", AppName: "X"})
	if r.Subject != "Welcome to X" {
		t.Errorf("the English subject should be the embedded one: %q", r.Subject)
	}

	if err := os.WriteFile(filepath.Join(dir, "fr", "welcome.txt"), []byte("{{.Nope}}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "fr/welcome.txt") {
		t.Errorf("a broken override should be refused at load, naming it: %v", err)
	}
	if _, err := mail.LoadTemplates(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory should be refused")
	}
}

func TestDirSenderWritesEMLFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	var logs bytes.Buffer
	s, err := mail.NewDirSender(dir, "", slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	link := "https://app.example.com/reset-password?token=secret-token-value"
	if err := s.Send(context.Background(), &mail.Message{ID: "d1", To: "ada@example.com", Subject: "Réinitialisez", Text: "Open " + link,
		HTML: "<p>" + link + "</p>", Kind: mail.KindPasswordReset}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != 1 {
		t.Fatalf("files = %v", files)
	}
	b, _ := os.ReadFile(files[0])
	eml := string(b)
	for _, want := range []string{"To: <ada@example.com>", "Message-ID: <d1@localhost>", "X-Tenantry-Mail: password_reset", "multipart/alternative",
		"Open " + link} {
		if !strings.Contains(eml, want) {
			t.Errorf("the .eml file lacks %q:\n%s", want, eml)
		}
	}
	if info, _ := os.Stat(files[0]); info.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600: the file holds credentials", info.Mode().Perm())
	}
	if !strings.Contains(logs.String(), files[0]) || !strings.Contains(logs.String(), "SMTP_HOST") {
		t.Errorf("the log should name the file and how to send mail instead: %s", logs.String())
	}
	if strings.Contains(logs.String(), "secret-token-value") {
		t.Errorf("the log holds the token: %s", logs.String())
	}
}
