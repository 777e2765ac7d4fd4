-- +goose Up
-- A deleted tenant keeps its row, members, database and blobs until its
-- retention period ends, so that it can be restored; deleted_at tells it
-- from a tenant that is only deactivated, which is kept for good.
ALTER TABLE tenants ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX tenants_deleted ON tenants (deleted_at) WHERE deleted_at IS NOT NULL;

-- The purge of each tenant, step by step: a purge that stopped half way
-- (a crash, a database that did not answer) is resumed from its step, and
-- a tenant being purged can no longer be restored. The row outlives the
-- tenant's, saying what was removed and when. No reference to tenants: the
-- tenant's row is deleted by the purge's last step.
CREATE TABLE tenant_purges (
    tenant_id     UUID PRIMARY KEY,
    tenant_name   VARCHAR(255) NOT NULL,
    database_name VARCHAR(63) NOT NULL,
    server        VARCHAR(63),
    deleted_at    TIMESTAMPTZ NOT NULL,
    reason        VARCHAR(32) NOT NULL,
    step          INTEGER NOT NULL,
    removed       TEXT NOT NULL DEFAULT '{}',
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);

-- Audit entries are append-only in the database itself: updating or
-- deleting one is refused, unless the transaction has named the entry's
-- chain in the transaction-local setting tenantry.audit_purge, which only
-- the purge of a tenant's chain does.
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('tenantry.audit_purge', true) IS DISTINCT FROM OLD.chain THEN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE FUNCTION audit_log_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: TRUNCATE refused' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_no_truncate();

-- +goose Down
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP FUNCTION audit_log_no_truncate();
DROP FUNCTION audit_log_append_only();
DROP TABLE tenant_purges;
DROP INDEX tenants_deleted;
ALTER TABLE tenants DROP COLUMN deleted_at;
