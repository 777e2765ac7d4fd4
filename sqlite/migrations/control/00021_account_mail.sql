-- +goose Up
-- Whether each account proved it receives mail at its address, and the
-- language its mails are written in. Accounts created before count as not
-- verified.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMP;
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';

-- The tokens of password-reset and verification links, stored only as
-- their SHA-256: the link in the mail is the one copy of each. A token
-- works once (used_at), until expires_at, and only for the address it was
-- sent to. delivery_id names the mail that carries it: a retried delivery
-- replaces its token rather than leave one that was never mailed.
CREATE TABLE account_tokens (
    token_hash  TEXT PRIMARY KEY,
    purpose     TEXT NOT NULL CHECK (purpose IN ('password_reset', 'email_verification')),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX account_tokens_delivery ON account_tokens (delivery_id);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);

-- The devices (a fingerprint of the user agent, and of the client address
-- when alerts are by address) each account signed in from, so that a
-- sign-in from a new one can be told to its owner.
CREATE TABLE known_devices (
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint   TEXT NOT NULL,
    first_seen_at TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);

-- +goose Down
DROP TABLE known_devices;
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN locale;
ALTER TABLE users DROP COLUMN email_verified_at;
