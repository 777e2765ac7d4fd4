-- +goose Up
-- Quotas are checked against two running totals kept beside the others:
-- quota_bytes is physical_bytes plus the bytes reserved by uploads in
-- progress, quota_documents the documents plus the documents reserved. An
-- upload reserves before it stores its content, with one conditional UPDATE
-- of these rows, so that uploads racing for the last bytes of a quota cannot
-- together pass it; recording the document turns the reservation into use,
-- and a failed upload gives it back. Each reservation is a row, so that one
-- whose upload died is found and given back by the reconciler.
INSERT INTO counters (name, value)
SELECT 'quota_bytes', value FROM counters WHERE name = 'physical_bytes';
INSERT INTO counters (name, value)
SELECT 'quota_documents', value FROM counters WHERE name = 'documents';

CREATE TABLE upload_reservations (
    id         UUID PRIMARY KEY,
    bytes      BIGINT NOT NULL,
    documents  BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX upload_reservations_created ON upload_reservations (created_at);

-- +goose Down
DROP TABLE upload_reservations;
DELETE FROM counters WHERE name IN ('quota_bytes', 'quota_documents');
