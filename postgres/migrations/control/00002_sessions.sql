-- +goose Up
-- A session is what a login creates and a logout revokes. Every access token
-- names its session, and every request checks that the session still
-- stands, so revocation takes effect at once in every process.
-- refresh_jti is the one refresh token the session accepts next: presenting
-- any older one is a reuse, and revokes the session.
CREATE TABLE sessions (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_jti   UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    refreshed_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    revoke_reason VARCHAR(32),
    client_ip     VARCHAR(64) NOT NULL DEFAULT '',
    user_agent    VARCHAR(512) NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
