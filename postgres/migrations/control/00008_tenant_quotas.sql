-- +goose Up
-- Per-tenant quota overrides. A tenant without a row for a quota works
-- under the configured default; a row with a NULL quota_limit is explicitly
-- unlimited. Storage limits are in bytes.
CREATE TABLE tenant_quotas (
    tenant_id   UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    quota       VARCHAR(20) NOT NULL CHECK (quota IN ('storage', 'documents', 'members')),
    quota_limit BIGINT CHECK (quota_limit >= 0),
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, quota)
);

-- +goose Down
DROP TABLE tenant_quotas;
