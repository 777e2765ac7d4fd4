-- +goose Up
-- The database servers registered for tenant databases, beside the default
-- one (TENANT_DATABASE_URL_TEMPLATE's, or the control database's), which is
-- never registered. url_template is a connection string with a
-- {database_name} placeholder. New tenants go to the least loaded active
-- server by weight; a draining one takes no new tenant.
CREATE TABLE tenant_servers (
    name         VARCHAR(63) PRIMARY KEY,
    url_template TEXT NOT NULL,
    weight       INTEGER NOT NULL CHECK (weight > 0),
    state        VARCHAR(16) NOT NULL CHECK (state IN ('active', 'draining')),
    created_at   TIMESTAMPTZ NOT NULL
);

-- The server that holds each tenant's database; NULL is the default one.
ALTER TABLE tenants ADD COLUMN server VARCHAR(63) REFERENCES tenant_servers (name);
CREATE INDEX tenants_server ON tenants (server);

-- Moves of a tenant's database from one server to another: at most one at a
-- time per tenant is under way. The mover renews heartbeat_at while it
-- works, so that a move whose mover died is found and undone.
CREATE TABLE tenant_moves (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    from_server  VARCHAR(63),
    to_server    VARCHAR(63),
    state        VARCHAR(16) NOT NULL CHECK (state IN ('copying', 'switching', 'done', 'failed')),
    owner        TEXT NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
);
CREATE UNIQUE INDEX tenant_moves_under_way ON tenant_moves (tenant_id) WHERE state IN ('copying', 'switching');

-- +goose Down
DROP TABLE tenant_moves;
DROP INDEX tenants_server;
ALTER TABLE tenants DROP COLUMN server;
DROP TABLE tenant_servers;
