-- +goose Up
-- How members of a tenant sign in: local (passwords), sso (only through
-- the tenant's identity provider) or both.
ALTER TABLE tenants ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'local' CHECK (auth_method IN ('local', 'sso', 'both'));

-- One single sign-on configuration per tenant. The client secret is stored
-- only sealed by the keyring, under the tenant's keys, bound to this table,
-- column and row: it is never returned by the API.
CREATE TABLE sso_configs (
    tenant_id             TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    id                    TEXT NOT NULL UNIQUE,
    provider_type         TEXT NOT NULL CHECK (provider_type IN ('azure_ad', 'google', 'oidc')),
    provider_tenant_id    TEXT NOT NULL DEFAULT '',
    issuer                TEXT NOT NULL DEFAULT '',
    hosted_domain         TEXT NOT NULL DEFAULT '',
    client_id             TEXT NOT NULL,
    client_secret         BLOB NOT NULL,
    allowed_redirect_urls TEXT NOT NULL DEFAULT '[]',
    scopes                TEXT NOT NULL DEFAULT '',
    auto_provisioning     TEXT NOT NULL DEFAULT '{}',
    is_enabled            BOOLEAN NOT NULL DEFAULT 0,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    created_by            TEXT
);
CREATE INDEX sso_configs_enabled ON sso_configs (is_enabled);

-- +goose Down
DROP TABLE sso_configs;
ALTER TABLE tenants DROP COLUMN auth_method;
