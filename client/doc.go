// Package client is a Go client of the tenantry API, generated from the
// OpenAPI 3.0 document the server serves (/api/docs/openapi-3.0.json). It
// is committed so that programs can import it; a test fails when it no
// longer matches what the generator makes of the current document.
//
// Create one with NewClientWithResponses(baseURL) and authenticate with a
// RequestEditorFn that sets "Authorization: Bearer <access token>".
package client

//go:generate go run ./internal/generate
