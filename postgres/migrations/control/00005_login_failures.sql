-- +goose Up
-- Failed sign-ins are counted per email address, registered or not, so that
-- an unknown address costs the same write as a wrong password and locks out
-- the same way: neither the answer, its timing nor a lockout tells which
-- addresses have accounts. A row lives only while it holds something: a
-- success deletes it, and maintenance deletes those whose lock has ended and
-- whose last failure is older than a lockout, so unknown addresses do not
-- pile up. last_failure_at is indexed for that pruning.
CREATE TABLE login_failures (
    email           VARCHAR(255) PRIMARY KEY,
    failures        INTEGER NOT NULL,
    locked_until    TIMESTAMPTZ,
    last_failure_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_last ON login_failures (last_failure_at);

-- Counts and locks in force move over, so that upgrading unlocks no one. The
-- time of the last failure was never kept; taking the upgrade's keeps such
-- rows for at least one more lockout.
INSERT INTO login_failures (email, failures, locked_until, last_failure_at)
SELECT email, failed_logins, locked_until, now()
FROM users
WHERE failed_logins > 0 OR locked_until IS NOT NULL;

ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;

-- +goose Down
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0, ADD COLUMN locked_until TIMESTAMPTZ;
-- Only registered addresses had somewhere to keep their count.
UPDATE users u
SET failed_logins = f.failures, locked_until = f.locked_until
FROM login_failures f
WHERE f.email = u.email;
DROP TABLE login_failures;
