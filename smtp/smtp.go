// Package smtp is tenantry's SMTP transport, on github.com/wneessen/go-mail:
// STARTTLS (required by default) or implicit TLS, authentication when a
// user name is configured, and a few connections kept open between
// messages. A 5xx answer to the sender, a recipient or the message is a
// permanent refusal (mail.PermanentError); anything else, a server that
// cannot be reached included, is worth trying again. Amazon SES is reached
// through its SMTP interface the same way.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/tenantry/tenantry/mail"
)

// TLS modes, the values of SMTP_TLS.
const (
	// TLSRequired upgrades the connection with STARTTLS and refuses to
	// go on without it: the default, except to a loopback host.
	TLSRequired = "required"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "implicit"
	// TLSOpportunistic uses STARTTLS when the server offers it: the
	// default to a loopback host, such as a relay on the same machine.
	TLSOpportunistic = "opportunistic"
	// TLSNone never encrypts; only a loopback host may be reached so
	// with a password.
	TLSNone = "none"
)

// Modes lists the accepted TLS modes.
var Modes = []string{TLSRequired, TLSImplicit, TLSOpportunistic, TLSNone} //nolint:gochecknoglobals // read-only list

// Config is where and how to send.
type Config struct {
	Host string
	// Port defaults to 465 with implicit TLS and 587 otherwise.
	Port     int
	Username string
	Password string
	// From is the sender, "Name <address>" or a bare address.
	From string
	// TLS is one of the modes; empty chooses by host (see DefaultTLS).
	TLS string
	// TLSConfig, when set, verifies the server instead of the system's
	// roots (tests use it to trust their own authority).
	TLSConfig *tls.Config
	// Timeout bounds each connection's dial and each command; 15s by
	// default.
	Timeout time.Duration
	// MaxIdle is how many connections stay open between messages; 4 by
	// default.
	MaxIdle int
}

// DefaultTLS is the TLS mode of a host when SMTP_TLS is unset.
func DefaultTLS(host string) string {
	if IsLoopback(host) {
		return TLSOpportunistic
	}
	return TLSRequired
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// DefaultPort is the port of a TLS mode when SMTP_PORT is unset.
func DefaultPort(mode string) int {
	if mode == TLSImplicit {
		return gomail.DefaultPortSSL
	}
	return gomail.DefaultPortTLS
}

// Sender sends through one SMTP server.
type Sender struct {
	cfg    Config
	client *gomail.Client

	mu   sync.Mutex
	idle []idleConn
}

type idleConn struct {
	c     *gosmtp.Client
	since time.Time
}

var _ mail.Sender = (*Sender)(nil)

// maxIdleTime is how long an unused connection is kept: servers close
// idle ones after a minute or more.
const maxIdleTime = 30 * time.Second

// New returns a Sender for cfg. It does not connect: the first message
// does.
func New(cfg Config) (*Sender, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.TLS == "" {
		cfg.TLS = DefaultTLS(cfg.Host)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort(cfg.TLS)
	}
	if cfg.From == "" {
		cfg.From = mail.DefaultFrom
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = 4
	}
	if cfg.TLS == TLSNone && cfg.Username != "" && !IsLoopback(cfg.Host) {
		return nil, errors.New("smtp: SMTP_TLS=none would send SMTP_PASSWORD in clear; only a loopback host may be reached so")
	}
	tlsConfig := cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tlsConfig = tlsConfig.Clone()
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cfg.Host
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(tlsConfig),
	}
	switch cfg.TLS {
	case TLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	case TLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("smtp: SMTP_TLS %q is not one of %s", cfg.TLS, strings.Join(Modes, ", "))
	}
	if cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if (cfg.TLS == TLSNone || cfg.TLS == TLSOpportunistic) && IsLoopback(cfg.Host) {
			// A relay on this machine: nothing crosses a network.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	client, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	return &Sender{cfg: cfg, client: client}, nil
}

// Describe implements mail.Sender.
func (s *Sender) Describe() string {
	d := fmt.Sprintf("SMTP %s (TLS %s)", net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.Port)), s.cfg.TLS)
	if s.cfg.Username != "" {
		d += " as " + s.cfg.Username
	}
	return d
}

// Send implements mail.Sender. A connection left open by an earlier
// message is used when there is one; if it turns out to be closed before
// anything of this message was sent, a new one is dialled.
func (s *Sender) Send(ctx context.Context, m *mail.Message) error {
	msg, err := mail.Compose(s.cfg.From, m)
	if err != nil {
		return &mail.PermanentError{Err: err}
	}
	if c := s.takeIdle(); c != nil {
		err := s.client.SendWithSMTPClient(c, msg)
		if err == nil {
			s.putIdle(c)
			return nil
		}
		_ = s.client.CloseWithSMTPClient(c)
		var se *gomail.SendError
		if !errors.As(err, &se) || se.Reason != gomail.ErrConnCheck {
			return classify(err)
		}
		// The server closed the idle connection: nothing was sent.
	}
	c, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("smtp: connect to %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	if err := s.client.SendWithSMTPClient(c, msg); err != nil {
		_ = s.client.CloseWithSMTPClient(c)
		return classify(err)
	}
	s.putIdle(c)
	return nil
}

func (s *Sender) takeIdle() *gosmtp.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.idle) > 0 {
		last := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if time.Since(last.since) < maxIdleTime {
			return last.c
		}
		go func() { _ = s.client.CloseWithSMTPClient(last.c) }()
	}
	return nil
}

func (s *Sender) putIdle(c *gosmtp.Client) {
	s.mu.Lock()
	if len(s.idle) < s.cfg.MaxIdle {
		s.idle = append(s.idle, idleConn{c: c, since: time.Now()})
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		_ = s.client.CloseWithSMTPClient(c)
	}
}

// Close closes the connections kept open.
func (s *Sender) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		_ = s.client.CloseWithSMTPClient(c.c)
	}
	return nil
}

// classify turns a failed send into a permanent refusal when the server
// answered 5xx to the sender, a recipient or the message.
func classify(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) {
		if code := se.ErrorCode(); code >= 500 && code < 600 {
			return &mail.PermanentError{Code: code, Err: err}
		}
	}
	return fmt.Errorf("smtp: %w", err)
}
