-- +goose Up
-- A session is what a login creates and a logout revokes. Every access token
-- names its session, and every request checks that the session still
-- stands, so revocation takes effect at once in every process.
-- refresh_jti is the one refresh token the session accepts next: presenting
-- any older one is a reuse, and revokes the session.
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_jti   TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    refreshed_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    revoked_at    TIMESTAMP,
    revoke_reason TEXT,
    client_ip     TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);

-- +goose Down
DROP TABLE sessions;
