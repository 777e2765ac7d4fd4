-- +goose Up
-- Listings sorted by filename page by cursor: each page seeks to the
-- (filename_key, id) of the last row of the page before, so that any page
-- costs what the first does. An index on filename_key alone orders the
-- keys but not the rows that share one, so every page would sort all the
-- rows of its first key; with id in the index, one range scan serves the
-- order in either direction and the seek. It replaces the index on
-- filename_key alone, which it serves as well.
CREATE INDEX documents_filename_id ON documents (filename_key, id);
DROP INDEX documents_filename;

-- +goose Down
CREATE INDEX documents_filename ON documents (filename_key);
DROP INDEX documents_filename_id;
