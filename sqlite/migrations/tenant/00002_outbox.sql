-- +goose Up
-- The tenant's events, written in the same transaction as the change they
-- describe (or forwarded from the control database). Once published, a row
-- gets the next position of the tenant's stream, which is what the events
-- API pages through; published rows are pruned after a retention period.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    event_type   TEXT NOT NULL,
    tenant_id    TEXT,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    position     BIGINT UNIQUE,
    published_at TIMESTAMP
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
INSERT INTO counters (name, value) VALUES ('event_position', 0);

-- +goose Down
DELETE FROM counters WHERE name = 'event_position';
DROP TABLE outbox;
