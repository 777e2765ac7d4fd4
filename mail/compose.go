package mail

import (
	"fmt"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// DefaultFrom is the sender of the embedded shape's mails, and of any
// transport configured without SMTP_FROM.
const DefaultFrom = "tenantry <no-reply@localhost>"

// Compose builds the MIME message of m sent by from: a plain-text part and,
// when m has one, an HTML alternative. opts change how it is written.
func Compose(from string, m *Message, opts ...gomail.MsgOption) (*gomail.Msg, error) {
	msg := gomail.NewMsg(append([]gomail.MsgOption{gomail.WithNoDefaultUserAgent()}, opts...)...)
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: sender %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(m.Subject)
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	if m.ID != "" {
		msg.SetMessageIDWithValue(m.ID + "@" + domainOf(from))
	} else {
		msg.SetMessageID()
	}
	if m.Kind != "" {
		msg.SetGenHeader("X-Tenantry-Mail", m.Kind)
	}
	// Automated mails must not draw out-of-office answers.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// domainOf returns the domain of a sender such as "Name <a@b.example>".
func domainOf(from string) string {
	addr := from
	if i := strings.LastIndex(addr, "<"); i >= 0 {
		addr = strings.TrimSuffix(addr[i+1:], ">")
	}
	if _, domain, ok := strings.Cut(addr, "@"); ok && domain != "" {
		return domain
	}
	return "localhost"
}
