-- +goose Up
-- Email domains a tenant claims. A claim is proven by a DNS TXT record
-- _tenantry-challenge.<domain> holding the claim's token; a domain is
-- verified for one tenant at a time.
CREATE TABLE tenant_domains (
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain       TEXT NOT NULL,
    token        TEXT NOT NULL,
    verified_at  TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);
CREATE UNIQUE INDEX tenant_domains_verified ON tenant_domains (domain) WHERE verified_at IS NOT NULL;

-- +goose Down
DROP TABLE tenant_domains;
