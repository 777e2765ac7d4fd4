package sqldb

// Statement is a query whose text differs by engine, written out once for
// each. The statements every request runs (the session lookup, the
// authorization) would otherwise be assembled anew on each call: their
// text allocated, copied and hashed again to find the prepared statement.
type Statement struct {
	sqlite, postgres string
}

// NewStatement writes out the text build gives for each engine.
func NewStatement(build func(Dialect) string) Statement {
	return Statement{sqlite: build(SQLite), postgres: build(Postgres)}
}

// For returns the statement's text for d.
func (s Statement) For(d Dialect) string {
	if d == SQLite {
		return s.sqlite
	}
	return s.postgres
}
