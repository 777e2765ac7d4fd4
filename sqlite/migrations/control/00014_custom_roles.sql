-- +goose Up
-- Custom roles of a tenant: a name and the permissions it grants, as a JSON
-- array of "resource:action" or "resource:action:own". The built-in roles
-- (admin, user, viewer) are defined in code and never stored.
CREATE TABLE tenant_roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- A member's role may now be a custom role, and may expire: after
-- expires_at the member is no longer one. SQLite cannot drop a CHECK
-- constraint, so the table is rebuilt.
CREATE TABLE memberships_new (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    joined_at  TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    PRIMARY KEY (tenant_id, user_id)
);
INSERT INTO memberships_new (tenant_id, user_id, role, joined_at) SELECT tenant_id, user_id, role, joined_at FROM memberships;
DROP TABLE memberships;
ALTER TABLE memberships_new RENAME TO memberships;
CREATE INDEX memberships_user ON memberships (user_id);
CREATE INDEX memberships_expiring ON memberships (expires_at) WHERE expires_at IS NOT NULL;

-- +goose Down
CREATE TABLE memberships_old (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    joined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
INSERT INTO memberships_old SELECT tenant_id, user_id, role, joined_at FROM memberships WHERE role IN ('admin', 'user', 'viewer');
DROP TABLE memberships;
ALTER TABLE memberships_old RENAME TO memberships;
CREATE INDEX memberships_user ON memberships (user_id);
DROP TABLE tenant_roles;
