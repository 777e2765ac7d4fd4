package document

import "github.com/tenantry/tenantry/sqldb"

// Queries whose plans the tests check.
const FileWithKeyQuery = fileWithKeyQuery

// OrphanFilesQuery is the reconciler's query for orphans in a dialect.
var OrphanFilesQuery = orphanFilesQuery

// DocumentsQuery is a documents page's statement for a named sort.
func DocumentsQuery(d sqldb.Dialect, sort string, filtered, seek bool) string {
	return documentsQuery(d, sortOrders[sort], filtered, "", seek, 21)
}

// FilesQuery is a files page's statement.
func FilesQuery(d sqldb.Dialect, seek bool) string { return filesQuery(d, seek, 21) }
