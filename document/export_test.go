package document

// Queries whose plans the tests check.
const (
	FileWithKeyQuery = fileWithKeyQuery
	OrphanFilesQuery = orphanFilesQuery
)
