-- +goose Up
CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    email             TEXT NOT NULL UNIQUE,
    first_name        TEXT NOT NULL,
    last_name         TEXT NOT NULL,
    password_hash     TEXT,
    is_active         BOOLEAN NOT NULL DEFAULT 1,
    is_platform_admin BOOLEAN NOT NULL DEFAULT 0,
    failed_logins     INTEGER NOT NULL DEFAULT 0,
    locked_until      TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    created_by        TEXT
);

-- provisioned_at stays NULL while the tenant's database is being created, so
-- a half-provisioned tenant is invisible and can be found and cleaned up.
CREATE TABLE tenants (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    database_name  TEXT NOT NULL UNIQUE,
    is_active      BOOLEAN NOT NULL DEFAULT 1,
    provisioned_at TIMESTAMP,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    created_by     TEXT
);
CREATE INDEX tenants_unprovisioned ON tenants (created_at) WHERE provisioned_at IS NULL;

CREATE TABLE memberships (
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    joined_at TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- +goose Down
DROP TABLE memberships;
DROP TABLE tenants;
DROP TABLE users;
