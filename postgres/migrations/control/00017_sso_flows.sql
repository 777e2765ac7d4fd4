-- +goose Up
-- A sign-in in progress at a provider. The state sent to the provider is
-- stored only hashed, as is the secret of the browser that started the
-- sign-in (the value of its __Host- cookie); a row is used once, for ten
-- minutes at most.
CREATE TABLE sso_states (
    state_hash    TEXT PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    browser_hash  TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    code_verifier BYTEA NOT NULL,
    redirect_uri  TEXT NOT NULL,
    return_url    TEXT NOT NULL DEFAULT '',
    -- link_user_id is the account whose owner, signed in with a password,
    -- asked to link this sign-in's identity to it.
    link_user_id  TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ
);
CREATE INDEX sso_states_expires ON sso_states (expires_at);

-- The one-time code a browser brings back to the application after a
-- sign-in with a return URL, exchanged once, within a minute, for a
-- session. Stored only hashed.
CREATE TABLE sso_codes (
    code_hash  TEXT PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX sso_codes_expires ON sso_codes (expires_at);

-- How a session was opened: by password, or through the single sign-on of
-- one tenant, which a tenant that enforces single sign-on requires.
ALTER TABLE sessions ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'password';
ALTER TABLE sessions ADD COLUMN sso_tenant_id TEXT;

-- +goose Down
ALTER TABLE sessions DROP COLUMN sso_tenant_id;
ALTER TABLE sessions DROP COLUMN auth_method;
DROP TABLE sso_codes;
DROP TABLE sso_states;
