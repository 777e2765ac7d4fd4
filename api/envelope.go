package api

import "net/http"

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
