-- +goose Up
-- Every mail tenantry sends, from the moment it is queued: the job that
-- sends it names its row, reads what to render from it, and records here how
-- it went, so that a mail already sent is never sent again by a job run
-- twice, and administrators can see deliveries and failures. params holds
-- what the template needs beyond the recipient, never a token: tokens are
-- made by the job itself, just before sending.
CREATE TABLE mail_deliveries (
    id         UUID PRIMARY KEY,
    kind       VARCHAR(64) NOT NULL,
    recipient  VARCHAR(255) NOT NULL,
    user_id    UUID,
    tenant_id  UUID,
    locale     VARCHAR(16) NOT NULL,
    params     TEXT NOT NULL DEFAULT '{}',
    status     VARCHAR(16) NOT NULL CHECK (status IN ('queued', 'retrying', 'sent', 'refused', 'failed', 'cancelled')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ
);
CREATE INDEX mail_deliveries_created ON mail_deliveries (created_at);
CREATE INDEX mail_deliveries_status ON mail_deliveries (status, created_at);

-- +goose Down
DROP TABLE mail_deliveries;
