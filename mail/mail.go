// Package mail is what tenantry's mails are made of: a message, the
// templates it is rendered from (HTML and plain text, in English and French,
// embedded and overridable from a directory), the Sender interface every
// transport implements, and the transport of the embedded shape, which
// writes each message as an .eml file. The SMTP transport is package smtp;
// queueing and recording deliveries is package mailer.
package mail

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Message is one mail to one recipient.
type Message struct {
	// ID identifies the message; the Message-ID header is derived from
	// it, so that a message sent twice (a crash between the server's
	// acceptance and its record) can be recognised as one.
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
	// Kind names the template the message came from; it is sent as the
	// X-Tenantry-Mail header, which helps filtering and tests.
	Kind string
	// Date is when the message was made; zero means now.
	Date time.Time
}

// Sender delivers messages. From is the sender's own.
type Sender interface {
	// Send delivers m, or returns why not. An error for which
	// IsPermanent is true means the message will never be accepted as
	// it is, and trying again is pointless.
	Send(ctx context.Context, m *Message) error
	// Describe names the transport for logs and the command line,
	// without any credential.
	Describe() string
}

// PermanentError is a refusal that trying again will not change: an SMTP
// server's 5xx answer to the sender, a recipient or the message.
type PermanentError struct {
	// Code is the server's reply code, such as 550.
	Code int
	Err  error
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("refused permanently (%d): %v", e.Code, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a permanent refusal.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// ValidAddress reports whether s is one bare email address.
func ValidAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && !strings.ContainsAny(s, "\r\n")
}
