-- +goose Up
-- The reconciler and file deletion ask whether any file row still names a
-- blob's storage key before removing the blob; without an index each of
-- those questions scans the whole files table while holding the tenant
-- database's connection. Not unique: a key is derived from sha256_hash,
-- which is already unique, so a second unique constraint would add nothing
-- but a way for an insert to fail on a constraint its ON CONFLICT
-- (sha256_hash) does not name.
CREATE INDEX files_storage_key ON files (storage_key);

-- +goose Down
DROP INDEX files_storage_key;
