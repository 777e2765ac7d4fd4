// Package servers keeps the registry of the database servers that hold
// tenant databases in the production shape, and places new tenants on them.
// The default server (TENANT_DATABASE_URL_TEMPLATE's, or the control
// database's) is never registered: with no server registered, every tenant
// goes there, as before servers could be added. Once some are, new tenants
// go to the active one with the fewest tenants for its weight; a draining
// server keeps its tenants (until they are moved) and takes no new one.
package servers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/sqldb"
)

// Default is how commands name the default server, the one tenant
// databases live on when no server is registered.
const Default = "default"

// States of a registered server.
const (
	Active   = "active"
	Draining = "draining"
)

// Server is a registered database server.
type Server struct {
	Name string
	// URLTemplate is a connection string with a {database_name}
	// placeholder. It may hold a password: show it with Redacted.
	URLTemplate string
	Weight      int
	State       string
	CreatedAt   time.Time
	// Tenants is how many tenants have their database there.
	Tenants int
}

// Redacted returns the server's URL template without its password.
func (s *Server) Redacted() string { return Redact(s.URLTemplate) }

// Redact removes the password from a connection URL, for display.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if strings.Contains(raw, "password=") {
			return "(a connection string with a password)"
		}
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return strings.ReplaceAll(u.String(), "%7Bdatabase_name%7D", "{database_name}")
}

// Registry is the registry in the control database, with the templates it
// has served cached: a server's template never changes once registered.
type Registry struct {
	control   sqldb.DB
	mu        sync.Mutex
	templates map[string]string
}

// NewRegistry returns the registry kept in control.
func NewRegistry(control sqldb.DB) *Registry {
	return &Registry{control: control, templates: map[string]string{}}
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Add registers a server. check, when not nil, is given the template first
// and may refuse it (a server that does not answer).
func (r *Registry) Add(ctx context.Context, name, urlTemplate string, weight int, check func(ctx context.Context, urlTemplate string) error) (*Server, error) {
	errs := tenantry.FieldErrors{}
	if !validName.MatchString(name) {
		errs.Add("name", "1 to 63 lower-case letters, digits, - and _, starting with a letter or digit")
	} else if name == Default {
		errs.Add("name", "default names the default server, which is never registered")
	}
	if weight < 1 {
		errs.Add("weight", "Must be at least 1")
	}
	if !strings.Contains(urlTemplate, "{database_name}") {
		errs.Add("url", "Must contain {database_name}")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(ctx, urlTemplate); err != nil {
			return nil, err
		}
	}
	s := &Server{Name: name, URLTemplate: urlTemplate, Weight: weight, State: Active, CreatedAt: sqldb.Now()}
	_, err := r.control.Exec(ctx, `
		INSERT INTO tenant_servers (name, url_template, weight, state, created_at) VALUES ($1, $2, $3, $4, $5)`,
		s.Name, s.URLTemplate, s.Weight, s.State, s.CreatedAt)
	if errors.Is(err, sqldb.ErrUniqueViolation) {
		return nil, tenantry.Errorf(tenantry.EConflict, "A server named %s is already registered", name)
	}
	return s, err
}

// List returns the registered servers with their tenant counts, by name.
func (r *Registry) List(ctx context.Context) ([]Server, error) {
	rows, err := r.control.Query(ctx, `
		SELECT s.name, s.url_template, s.weight, s.state, s.created_at, count(t.id)
		FROM tenant_servers s LEFT JOIN tenants t ON t.server = s.name
		GROUP BY s.name, s.url_template, s.weight, s.state, s.created_at
		ORDER BY s.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Server
	for rows.Next() {
		var s Server
		if err := rows.Scan(&s.Name, &s.URLTemplate, &s.Weight, &s.State, &s.CreatedAt, &s.Tenants); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Get returns one registered server.
func (r *Registry) Get(ctx context.Context, name string) (*Server, error) {
	var s Server
	err := r.control.QueryRow(ctx, `
		SELECT s.name, s.url_template, s.weight, s.state, s.created_at,
		       (SELECT count(*) FROM tenants t WHERE t.server = s.name)
		FROM tenant_servers s WHERE s.name = $1`, name).
		Scan(&s.Name, &s.URLTemplate, &s.Weight, &s.State, &s.CreatedAt, &s.Tenants)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, tenantry.Errorf(tenantry.ENotFound, "No server named %s is registered", name)
	}
	return &s, err
}

// SetState makes a server active or draining.
func (r *Registry) SetState(ctx context.Context, name, state string) error {
	if state != Active && state != Draining {
		return fmt.Errorf("servers: unknown state %q", state)
	}
	n, err := r.control.Exec(ctx, `UPDATE tenant_servers SET state = $2 WHERE name = $1`, name, state)
	if err != nil {
		return err
	} else if n == 0 {
		return tenantry.Errorf(tenantry.ENotFound, "No server named %s is registered", name)
	}
	return nil
}

// URLTemplate returns a registered server's template.
func (r *Registry) URLTemplate(ctx context.Context, name string) (string, error) {
	r.mu.Lock()
	t, ok := r.templates[name]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	err := r.control.QueryRow(ctx, `SELECT url_template FROM tenant_servers WHERE name = $1`, name).Scan(&t)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", fmt.Errorf("database server %q is not registered", name)
	} else if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.templates[name] = t
	r.mu.Unlock()
	return t, nil
}

// Place chooses the server of a new tenant: among the active servers, the
// one whose tenants are fewest for its weight (ties to the heavier, then by
// name); the default server ("") when none is registered. When servers are
// registered but all drain, there is nowhere to put a tenant.
func (r *Registry) Place(ctx context.Context) (string, error) {
	var registered int
	if err := r.control.QueryRow(ctx, `SELECT count(*) FROM tenant_servers`).Scan(&registered); err != nil {
		return "", err
	}
	if registered == 0 {
		return "", nil
	}
	var name string
	err := r.control.QueryRow(ctx, `
		SELECT s.name FROM tenant_servers s LEFT JOIN tenants t ON t.server = s.name
		WHERE s.state = 'active'
		GROUP BY s.name, s.weight
		ORDER BY CAST(count(t.id) AS REAL) / s.weight, s.weight DESC, s.name
		`+sqldb.Limit(1)).Scan(&name)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", tenantry.Errorf(tenantry.EUnavailable, "Every database server is draining: no new tenant can be placed")
	}
	return name, err
}
