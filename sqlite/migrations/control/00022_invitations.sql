-- +goose Up
-- Invitations to join a tenant, by email address. token_hash is the
-- SHA-256 of the token in the mail, set by the job that sends it (each
-- sending replaces it, so only the last link mailed works); NULL until
-- then. An invitation is pending until accepted, revoked or expired; a
-- tenant has at most one pending invitation per address.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    invited_by   TEXT NOT NULL,
    token_hash   TEXT UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    last_sent_at TIMESTAMP NOT NULL,
    accepted_at  TIMESTAMP,
    accepted_by  TEXT,
    revoked_at   TIMESTAMP
);
CREATE UNIQUE INDEX invitations_pending ON invitations (tenant_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_tenant ON invitations (tenant_id, created_at);

-- +goose Down
DROP TABLE invitations;
