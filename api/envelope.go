package api

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// envelope is the body of every successful JSON response under /api.
type envelope[T any] struct {
	Success bool   `json:"success" doc:"Always true for successful responses."`
	Message string `json:"message" doc:"Human-readable summary."`
	Data    T      `json:"data"`
}

// response is a huma output carrying an enveloped body and its status.
type response[T any] struct {
	Status int
	Body   envelope[T]
}

// ok returns a 200 response with data.
func ok[T any](message string, data T) *response[T] {
	return &response[T]{Status: http.StatusOK, Body: envelope[T]{Success: true, Message: message, Data: data}}
}

// created returns a 201 response with data.
func created[T any](message string, data T) *response[T] {
	return &response[T]{Status: http.StatusCreated, Body: envelope[T]{Success: true, Message: message, Data: data}}
}

// noData is the data of responses that have none: always null.
type noData struct {
	_ struct{} `nullable:"true"`
}

// TransformSchema implements huma.SchemaTransformer.
func (noData) TransformSchema(_ huma.Registry, s *huma.Schema) *huma.Schema {
	s.Description = "Always null: the operation returns no data."
	return s
}

// done returns a 200 response whose data is null.
func done(message string) *response[*noData] {
	return ok[*noData](message, nil)
}

// noStore is the Cache-Control of responses that carry credentials: no
// cache, shared or private, may keep them.
const noStore = "no-store"

// credentialsResponse is a response carrying tokens. Its Cache-Control
// header is documented with it.
type credentialsResponse[T any] struct {
	Status       int
	CacheControl string `header:"Cache-Control" enum:"no-store" doc:"Always no-store: the body carries credentials."`
	Body         envelope[T]
}

// credentials returns a 200 response carrying tokens, marked no-store.
func credentials[T any](message string, data T) *credentialsResponse[T] {
	return &credentialsResponse[T]{Status: http.StatusOK, CacheControl: noStore, Body: envelope[T]{Success: true, Message: message, Data: data}}
}
