-- +goose Up
-- When each session was last used, for the list of a user's sessions. A
-- request writes it only when the stored value is more than a minute old,
-- so a busy session costs at most one write a minute. The default covers
-- sessions opened by processes that predate the column.
ALTER TABLE sessions ADD COLUMN last_used_at TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE sessions SET last_used_at = GREATEST(created_at, refreshed_at);

-- A user's security history is read from every chain: the entries the user
-- acted in, and those done to the user's account.
CREATE INDEX audit_log_actor_action ON audit_log (actor_id, action, occurred_at);
CREATE INDEX audit_log_target_action ON audit_log (target_id, action, occurred_at);

-- +goose Down
DROP INDEX audit_log_target_action;
DROP INDEX audit_log_actor_action;
ALTER TABLE sessions DROP COLUMN last_used_at;
