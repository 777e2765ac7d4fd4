-- +goose Up
-- One row per distinct content. sha256_hash is the deduplication key and is
-- unique, so two concurrent uploads of the same bytes cannot both insert.
CREATE TABLE files (
    id             UUID PRIMARY KEY,
    sha256_hash    CHAR(64) NOT NULL UNIQUE,
    md5_hash       CHAR(32) NOT NULL,
    file_size      BIGINT NOT NULL,
    storage_key    VARCHAR(500) NOT NULL,
    file_metadata  JSONB NOT NULL DEFAULT '{}',
    document_count BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    created_by     UUID
);
CREATE INDEX files_created ON files (created_at DESC, id DESC);
CREATE INDEX files_orphaned ON files (updated_at) WHERE document_count = 0;

CREATE TABLE documents (
    id         UUID PRIMARY KEY,
    filename   VARCHAR(255) NOT NULL,
    -- The filename case-folded by the application, so that the filename
    -- filter matches alike on both engines.
    filename_key VARCHAR(1020) NOT NULL,
    mime_type  VARCHAR(100) NOT NULL,
    file_id    UUID NOT NULL REFERENCES files (id) ON DELETE RESTRICT,
    user_id    UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    created_by UUID
);
CREATE INDEX documents_created ON documents (created_at DESC, id DESC);
CREATE INDEX documents_file ON documents (file_id);
CREATE INDEX documents_user ON documents (user_id);
CREATE INDEX documents_filename ON documents (filename_key);

-- Running totals kept in the same transactions as the rows they count, so a
-- listing or a storage report never scans the tables.
CREATE TABLE counters (
    name  VARCHAR(32) PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES
    ('documents', 0), ('files', 0), ('logical_bytes', 0), ('physical_bytes', 0);

-- +goose Down
DROP TABLE counters;
DROP TABLE documents;
DROP TABLE files;
