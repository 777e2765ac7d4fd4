package document

// Queries whose plans the tests check.
const FileWithKeyQuery = fileWithKeyQuery

// OrphanFilesQuery is the reconciler's query for orphans in a dialect.
var OrphanFilesQuery = orphanFilesQuery
