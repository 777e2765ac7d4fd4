-- +goose Up
-- Invitations to join a tenant, by email address. token_hash is the
-- SHA-256 of the token in the mail, set by the job that sends it (each
-- sending replaces it, so only the last link mailed works); NULL until
-- then. An invitation is pending until accepted, revoked or expired; a
-- tenant has at most one pending invitation per address.
CREATE TABLE invitations (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email        VARCHAR(255) NOT NULL,
    role         VARCHAR(20) NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    invited_by   UUID NOT NULL,
    token_hash   VARCHAR(64) UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_sent_at TIMESTAMPTZ NOT NULL,
    accepted_at  TIMESTAMPTZ,
    accepted_by  UUID,
    revoked_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX invitations_pending ON invitations (tenant_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invitations_tenant ON invitations (tenant_id, created_at);

-- +goose Down
DROP TABLE invitations;
