-- +goose Up
-- Events about accounts and tenants, written in the same transaction as the
-- change they describe. Events naming a tenant are forwarded into that
-- tenant's own outbox, so that its stream is ordered in one place; the
-- others are published from here.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    tenant_id    TEXT,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    position     BIGINT,
    published_at TIMESTAMP
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The streams (the platform's, and each tenant's) that may hold unpublished
-- events. A writer marks its stream before committing, so that the relay
-- visits only these instead of every tenant database; version changes with
-- every mark, so a mark made while the relay drains is never lost. A claim
-- gives one relay a stream for a while.
CREATE TABLE outbox_pending (
    stream           TEXT PRIMARY KEY,
    database_name    TEXT NOT NULL,
    version          BIGINT NOT NULL,
    marked_at        TIMESTAMP NOT NULL,
    claimed_by       TEXT,
    claim_expires_at TIMESTAMP
);
CREATE INDEX outbox_pending_marked ON outbox_pending (marked_at);

-- Which consumer has handled which event, so that a redelivered event is
-- acted on once.
CREATE TABLE consumed_events (
    consumer    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    consumed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX consumed_events_at ON consumed_events (consumed_at);

-- +goose Down
DROP TABLE consumed_events;
DROP TABLE outbox_pending;
DROP TABLE outbox;
