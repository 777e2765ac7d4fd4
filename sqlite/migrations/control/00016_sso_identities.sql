-- +goose Up
-- A user's identity at a tenant's provider: (issuer, subject), and for
-- Microsoft Entra ID the directory (tid) and object id (oid), which is then
-- the subject. One identity per user per tenant, and one user per identity.
-- Provider tokens are stored only sealed by the keyring, never returned.
CREATE TABLE sso_identities (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issuer                TEXT NOT NULL,
    subject               TEXT NOT NULL,
    provider_tenant_id    TEXT NOT NULL DEFAULT '',
    object_id             TEXT NOT NULL DEFAULT '',
    email                 TEXT NOT NULL DEFAULT '',
    display_name          TEXT NOT NULL DEFAULT '',
    access_token          BLOB,
    refresh_token         BLOB,
    token_expires_at      TIMESTAMP,
    last_login_at         TIMESTAMP NOT NULL,
    created_at            TIMESTAMP NOT NULL,
    updated_at            TIMESTAMP NOT NULL,
    UNIQUE (tenant_id, issuer, subject),
    UNIQUE (tenant_id, user_id)
);
CREATE INDEX sso_identities_user ON sso_identities (user_id);
CREATE INDEX sso_identities_refresh ON sso_identities (token_expires_at) WHERE refresh_token IS NOT NULL;

-- +goose Down
DROP TABLE sso_identities;
