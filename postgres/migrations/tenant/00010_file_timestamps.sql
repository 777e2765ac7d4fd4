-- +goose Up
-- The trusted time-stamp (RFC 3161) of each file: one row per file that was
-- ever asked for one, none for a file never asked. status is pending from
-- the request until the stamp is verified and kept (stamped) or given up
-- (failed, with the reason); a stamp in flight stays pending, so a worker
-- that dies leaves nothing half-done. The columns describe the file's
-- latest token; every token kept, the file's own and the archive stamps
-- over it, is a row of timestamp_tokens.
CREATE TABLE file_timestamps (
    file_id          UUID PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    status           VARCHAR(10) NOT NULL CHECK (status IN ('pending', 'stamped', 'failed')),
    hash_algorithm   VARCHAR(10) NOT NULL,
    authority        TEXT,
    gen_time         TIMESTAMPTZ,
    serial_number    TEXT,
    policy_oid       TEXT,
    accuracy_micros  BIGINT,
    signer_not_after TIMESTAMPTZ,
    verified_at      TIMESTAMPTZ,
    failure_reason   TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Each request (upload, create, bulk) gets an id; its job acts only
    -- while the row still names it, so that a job run twice, or one
    -- overtaken by a newer request, stores nothing.
    request_id       TEXT NOT NULL,
    requested_at     TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX file_timestamps_status ON file_timestamps (status, updated_at);

-- Every verified token, in order: seq 1 stamps the file's digest, each
-- later one (kind archive) stamps the whole response before it, so that
-- the chain outlives the certificate of any one authority (RFC 4998). Its
-- key is one column, as a tenant move needs to follow the table's changes.
CREATE TABLE timestamp_tokens (
    id               UUID PRIMARY KEY,
    file_id          UUID NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    kind             VARCHAR(10) NOT NULL CHECK (kind IN ('file', 'archive')),
    hash_algorithm   VARCHAR(10) NOT NULL,
    imprint          TEXT NOT NULL,
    authority        TEXT NOT NULL,
    gen_time         TIMESTAMPTZ NOT NULL,
    serial_number    TEXT NOT NULL,
    policy_oid       TEXT NOT NULL,
    signer_not_after TIMESTAMPTZ NOT NULL,
    response         BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (file_id, seq)
);
CREATE INDEX timestamp_tokens_expiry ON timestamp_tokens (signer_not_after);

-- +goose Down
DROP TABLE timestamp_tokens;
DROP TABLE file_timestamps;
