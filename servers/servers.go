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
	"github.com/tenantry/tenantry/keyring"
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
	// placeholder. It may hold a password: show it with Redacted. As
	// listed, it is redacted already when the registry seals templates.
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
	keys      Sealer
	mu        sync.Mutex
	templates map[string]string
}

// Sealer encrypts templates at rest: the keyring.
type Sealer interface {
	Encrypt(ctx context.Context, scope string, plaintext []byte, aad keyring.AAD) ([]byte, error)
	Decrypt(ctx context.Context, scope string, sealed []byte, aad keyring.AAD) ([]byte, error)
}

// templateAAD binds a sealed template to its server's row.
func templateAAD(name string) keyring.AAD {
	return keyring.AAD{"table", "tenant_servers", "column", "url_template", "row", name}
}

// SealedTemplates is where the registry keeps sealed templates, for the
// keyring's rotation and status.
func SealedTemplates(control sqldb.DB) keyring.SealedValues {
	return keyring.Column{DB: control, Table: "tenant_servers", Key: "name", Column: "url_template_sealed",
		Scope: keyring.Platform, AAD: templateAAD}
}

// SealWith makes the registry keep templates sealed by keys from now on.
// The key service is opened after the databases the registry serves, hence
// not given to NewRegistry.
func (r *Registry) SealWith(keys Sealer) { r.keys = keys }

// SealStored seals the templates registered before a key service was
// configured, leaving their redacted form in clear.
func (r *Registry) SealStored(ctx context.Context) error {
	if r.keys == nil {
		return nil
	}
	rows, err := r.control.Query(ctx, `SELECT name, url_template FROM tenant_servers WHERE url_template_sealed IS NULL`)
	if err != nil {
		return err
	}
	inClear := map[string]string{}
	for rows.Next() {
		var name, t string
		if err := rows.Scan(&name, &t); err != nil {
			rows.Close()
			return err
		}
		inClear[name] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for name, t := range inClear {
		sealed, err := r.keys.Encrypt(ctx, keyring.Platform, []byte(t), templateAAD(name))
		if err != nil {
			return err
		}
		if _, err := r.control.Exec(ctx, `
			UPDATE tenant_servers SET url_template = $1, url_template_sealed = $2
			WHERE name = $3 AND url_template_sealed IS NULL`, Redact(t), sealed, name); err != nil {
			return err
		}
	}
	return nil
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
	stored, sealed := urlTemplate, []byte(nil)
	if r.keys != nil {
		var err error
		if sealed, err = r.keys.Encrypt(ctx, keyring.Platform, []byte(urlTemplate), templateAAD(name)); err != nil {
			return nil, err
		}
		stored = Redact(urlTemplate)
	}
	_, err := r.control.Exec(ctx, `
		INSERT INTO tenant_servers (name, url_template, url_template_sealed, weight, state, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.Name, stored, sealed, s.Weight, s.State, s.CreatedAt)
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
	var sealed []byte
	err := r.control.QueryRow(ctx, `SELECT url_template, url_template_sealed FROM tenant_servers WHERE name = $1`, name).Scan(&t, &sealed)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", fmt.Errorf("database server %q is not registered", name)
	} else if err != nil {
		return "", err
	}
	if sealed != nil {
		if r.keys == nil {
			return "", fmt.Errorf("database server %q: its connection string is sealed and no key service is configured", name)
		}
		plain, err := r.keys.Decrypt(ctx, keyring.Platform, sealed, templateAAD(name))
		if err != nil {
			return "", fmt.Errorf("database server %q: %w", name, err)
		}
		t = string(plain)
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
