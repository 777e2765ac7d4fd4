package mail

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	gomail "github.com/wneessen/go-mail"
)

// DirSender is the transport of the embedded shape when no SMTP server is
// configured: it writes each message as an .eml file into a directory, so
// that a first try shows the links tenantry mails.
type DirSender struct {
	dir    string
	from   string
	logger *slog.Logger
}

var _ Sender = (*DirSender)(nil)

// NewDirSender returns a Sender writing into dir, which the first message
// creates if need be.
func NewDirSender(dir, from string, logger *slog.Logger) (*DirSender, error) {
	if from == "" {
		from = DefaultFrom
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DirSender{dir: dir, from: from, logger: logger}, nil
}

// Describe implements Sender.
func (d *DirSender) Describe() string { return "files in " + d.dir }

// Dir is where the messages are written.
func (d *DirSender) Dir() string { return d.dir }

// Send writes m to a new file, named after the time and the message's id.
// The file appears whole or not at all. The log line names the file, never
// its content: the links in it are credentials.
func (d *DirSender) Send(ctx context.Context, m *Message) error {
	// Unencoded (8bit), so that the file shows each link whole, on one
	// line, to whoever opens it in an editor.
	msg, err := Compose(d.from, m, gomail.WithEncoding(gomail.NoEncoding))
	if err != nil {
		return &PermanentError{Err: err}
	}
	id := m.ID
	if id == "" {
		id = uuid.NewString()
	}
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + sanitize(id) + ".eml"
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return fmt.Errorf("mail: create %s: %w", d.dir, err)
	}
	tmp, err := os.CreateTemp(d.dir, ".writing-*")
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := msg.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: write %s: %w", tmp.Name(), err)
	}
	path := filepath.Join(d.dir, name)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	d.logger.InfoContext(ctx, "mail written to a file: no SMTP server is configured (set SMTP_HOST to send mail)",
		"file", path, "kind", m.Kind)
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '_'
	}, s)
}
