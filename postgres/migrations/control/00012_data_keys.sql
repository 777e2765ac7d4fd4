-- +goose Up
-- Data keys, one series of versions per scope (a tenant's id, or
-- "platform"), each stored only wrapped by the key service's wrapping key
-- (a per-scope wrapping key: the local one below, or a Vault Transit key). The newest version of a
-- scope encrypts; every version kept decrypts. Destroying a scope's keys
-- deletes its rows (and, with Vault, its Transit key): what they encrypted
-- is then unreadable anywhere it was copied.
CREATE TABLE data_keys (
    scope      TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    wrapped    BYTEA NOT NULL,
    wrapper    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, version)
);

-- The local wrapper's wrapping keys, one per scope, themselves wrapped by
-- the master key. Deleting a scope's row is what destroys its keys: a copy
-- of its data keys kept aside no longer unwraps, even with the master key.
CREATE TABLE local_wrapping_keys (
    scope      TEXT PRIMARY KEY,
    wrapped    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE local_wrapping_keys;
DROP TABLE data_keys;
