-- +goose Up
-- The audit trail: append-only entries, hash-chained per chain (one per
-- tenant, named by the tenant id, and "platform" for the rest). Every value
-- is stored as text in the form the hash covers, details included, so that
-- any copy of the rows can recompute every hash.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    chain       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    actor_id    TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id   TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'error')),
    client_ip   TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    request_id  TEXT NOT NULL DEFAULT '',
    details     TEXT NOT NULL DEFAULT '{}',
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (chain, seq)
);
CREATE INDEX audit_log_actor ON audit_log (chain, actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (chain, action, seq);
CREATE INDEX audit_log_time ON audit_log (chain, occurred_at);

-- The head of each chain: the seq and hash of its last entry. Appends lock
-- this row, which orders them; and since it moves with every append,
-- deleting entries from the end of a chain no longer matches it. head_mac
-- signs the head with a key kept outside the database, so that whoever can
-- write here cannot rewrite entries and recompute every hash unnoticed.
CREATE TABLE audit_chains (
    chain     TEXT PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    head_mac  TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE audit_chains;
DROP TABLE audit_log;
