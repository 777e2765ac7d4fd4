// Package bench holds tenantry's committed benchmarks. They live in test
// files only and run with go test -bench; plain go test runs none of them.
// Each benchmark measures both shapes, the production one on the PostgreSQL
// server named by TENANTRY_TEST_DATABASE_URL, and docs/benchmarks.md records
// the exact commands and the figures they gave.
package bench
