-- +goose Up
-- A registered server's connection string may hold a password: with a key
-- service it is kept sealed with the platform's key, and url_template keeps
-- only its redacted form, for listings that need no decryption.
ALTER TABLE tenant_servers ADD COLUMN url_template_sealed BYTEA;

-- +goose Down
ALTER TABLE tenant_servers DROP COLUMN url_template_sealed;
