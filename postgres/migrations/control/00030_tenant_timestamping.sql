-- +goose Up
-- Each tenant's choice of trusted time-stamping (RFC 3161). A tenant
-- without a row has it off: no file's digest leaves tenantry unless an
-- admin asked. authorities is a JSON array of configured authority names,
-- tried in order.
CREATE TABLE tenant_timestamping (
    tenant_id      UUID PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    enabled        BOOLEAN NOT NULL,
    authorities    TEXT NOT NULL,
    hash_algorithm VARCHAR(10) NOT NULL CHECK (hash_algorithm IN ('sha256', 'sha384', 'sha512')),
    updated_at     TIMESTAMPTZ NOT NULL,
    updated_by     UUID
);

-- +goose Down
DROP TABLE tenant_timestamping;
