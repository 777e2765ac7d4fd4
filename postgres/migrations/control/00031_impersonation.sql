-- +goose Up
-- A session opened by a platform administrator acting as the user: the
-- administrator and the reason they gave. Such a session never hands out a
-- refresh token, ends after a quarter of an hour, and every request made
-- with it is audited under both people. It goes when either account goes.
ALTER TABLE sessions ADD COLUMN impersonator_id UUID REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD COLUMN impersonation_reason VARCHAR(500);
CREATE INDEX sessions_impersonator ON sessions (impersonator_id) WHERE impersonator_id IS NOT NULL;

-- +goose Down
DROP INDEX sessions_impersonator;
ALTER TABLE sessions DROP COLUMN impersonation_reason;
ALTER TABLE sessions DROP COLUMN impersonator_id;
