-- +goose Up
-- Custom roles of a tenant: a name and the permissions it grants, as a JSON
-- array of "resource:action" or "resource:action:own". The built-in roles
-- (admin, user, viewer) are defined in code and never stored.
CREATE TABLE tenant_roles (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        VARCHAR(63) NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- A member's role may now be a custom role, and may expire: after
-- expires_at the member is no longer one.
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ALTER COLUMN role TYPE VARCHAR(63);
ALTER TABLE memberships ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX memberships_expiring ON memberships (expires_at) WHERE expires_at IS NOT NULL;

-- +goose Down
DELETE FROM memberships WHERE role NOT IN ('admin', 'user', 'viewer');
DROP INDEX memberships_expiring;
ALTER TABLE memberships DROP COLUMN expires_at;
ALTER TABLE memberships ALTER COLUMN role TYPE VARCHAR(20);
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check CHECK (role IN ('admin', 'user', 'viewer'));
DROP TABLE tenant_roles;
