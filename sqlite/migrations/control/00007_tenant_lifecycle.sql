-- +goose Up
-- A deleted tenant keeps its row, members, database and blobs until its
-- retention period ends, so that it can be restored; deleted_at tells it
-- from a tenant that is only deactivated, which is kept for good.
ALTER TABLE tenants ADD COLUMN deleted_at TIMESTAMP;
CREATE INDEX tenants_deleted ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

-- The purge of each tenant, step by step: a purge that stopped half way
-- (a crash, a database that did not answer) is resumed from its step, and
-- a tenant being purged can no longer be restored. The row outlives the
-- tenant's, saying what was removed and when. No reference to tenants: the
-- tenant's row is deleted by the purge's last step.
CREATE TABLE tenant_purges (
    tenant_id     TEXT PRIMARY KEY,
    tenant_name   TEXT NOT NULL,
    database_name TEXT NOT NULL,
    server        TEXT,
    deleted_at    TIMESTAMP NOT NULL,
    reason        TEXT NOT NULL,
    step          INTEGER NOT NULL,
    removed       TEXT NOT NULL DEFAULT '{}',
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP
);

-- Audit entries are append-only in the database itself: updating or
-- deleting one is refused, unless the transaction has named the entry's
-- chain in audit_purges, which only the purge of a tenant's chain does,
-- removing its row again before it commits. SQLite has no
-- transaction-local settings; a row that never outlives its transaction
-- is one.
CREATE TABLE audit_purges (
    chain TEXT PRIMARY KEY
);
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_purges WHERE chain = OLD.chain)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_purges WHERE chain = OLD.chain)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_purges;
DROP TABLE tenant_purges;
DROP INDEX tenants_deleted;
ALTER TABLE tenants DROP COLUMN deleted_at;
