-- +goose Up
-- How members of a tenant sign in: local (passwords), sso (only through
-- the tenant's identity provider) or both.
ALTER TABLE tenants ADD COLUMN auth_method VARCHAR(10) NOT NULL DEFAULT 'local' CHECK (auth_method IN ('local', 'sso', 'both'));

-- One single sign-on configuration per tenant. The client secret is stored
-- only sealed by the keyring, under the tenant's keys, bound to this table,
-- column and row: it is never returned by the API.
CREATE TABLE sso_configs (
    tenant_id             UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    id                    UUID NOT NULL UNIQUE,
    provider_type         VARCHAR(20) NOT NULL CHECK (provider_type IN ('azure_ad', 'google', 'oidc')),
    provider_tenant_id    VARCHAR(255) NOT NULL DEFAULT '',
    issuer                TEXT NOT NULL DEFAULT '',
    hosted_domain         VARCHAR(255) NOT NULL DEFAULT '',
    client_id             VARCHAR(255) NOT NULL,
    client_secret         BYTEA NOT NULL,
    allowed_redirect_urls TEXT NOT NULL DEFAULT '[]',
    scopes                TEXT NOT NULL DEFAULT '',
    auto_provisioning     TEXT NOT NULL DEFAULT '{}',
    is_enabled            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    created_by            UUID
);
CREATE INDEX sso_configs_enabled ON sso_configs (is_enabled);

-- +goose Down
DROP TABLE sso_configs;
ALTER TABLE tenants DROP COLUMN auth_method;
