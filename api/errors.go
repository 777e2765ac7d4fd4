package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"

	"github.com/tenantry/tenantry"
	"github.com/tenantry/tenantry/keyring"
	"github.com/tenantry/tenantry/sqldb"
)

// statusByCode is the one map from error codes to HTTP statuses.
var statusByCode = map[string]int{ //nolint:gochecknoglobals // read-only table
	tenantry.EBadRequest:             http.StatusBadRequest,
	tenantry.EValidation:             http.StatusBadRequest,
	tenantry.EUnauthorized:           http.StatusUnauthorized,
	tenantry.ETokenExpired:           http.StatusUnauthorized,
	tenantry.ETokenRevoked:           http.StatusUnauthorized,
	tenantry.EInvalidCredentials:     http.StatusUnauthorized,
	tenantry.EForbidden:              http.StatusForbidden,
	tenantry.EQuotaExceeded:          http.StatusForbidden,
	tenantry.EAccountInactive:        http.StatusForbidden,
	tenantry.ENotFound:               http.StatusNotFound,
	tenantry.EMethodNotAllowed:       http.StatusMethodNotAllowed,
	tenantry.EConflict:               http.StatusConflict,
	tenantry.EPayloadTooLarge:        http.StatusRequestEntityTooLarge,
	tenantry.EUnsupportedMediaType:   http.StatusUnsupportedMediaType,
	tenantry.EAccountLocked:          http.StatusLocked,
	tenantry.ERateLimited:            http.StatusTooManyRequests,
	tenantry.ERequestTimeout:         http.StatusRequestTimeout,
	tenantry.EInternal:               http.StatusInternalServerError,
	tenantry.EUnavailable:            http.StatusServiceUnavailable,
	tenantry.ESSORequired:            http.StatusForbidden,
	tenantry.ESSONotAvailable:        http.StatusBadRequest,
	tenantry.ESSOStateInvalid:        http.StatusBadRequest,
	tenantry.ESSOTokenInvalid:        http.StatusUnauthorized,
	tenantry.ESSOTenantMismatch:      http.StatusBadRequest,
	tenantry.ESSODomainNotAllowed:    http.StatusForbidden,
	tenantry.ESSOGroupNotAllowed:     http.StatusForbidden,
	tenantry.ESSONotProvisioned:      http.StatusForbidden,
	tenantry.ESSOLinkRequired:        http.StatusConflict,
	tenantry.ESSOCodeInvalid:         http.StatusBadRequest,
	tenantry.ESSOProviderError:       http.StatusBadRequest,
	tenantry.ESSOProviderUnavailable: http.StatusBadGateway,
	tenantry.ESSOGroupsUnresolved:    http.StatusBadGateway,
	tenantry.ERedirectNotAllowed:     http.StatusBadRequest,
	tenantry.EEmailNotVerified:       http.StatusForbidden,
	tenantry.EInvalidToken:           http.StatusBadRequest,
}

// codeByStatus names the errors the HTTP machinery itself produces.
var codeByStatus = map[int]string{ //nolint:gochecknoglobals // read-only table
	http.StatusBadRequest:            tenantry.EBadRequest,
	http.StatusUnauthorized:          tenantry.EUnauthorized,
	http.StatusRequestTimeout:        tenantry.ERequestTimeout,
	http.StatusForbidden:             tenantry.EForbidden,
	http.StatusNotFound:              tenantry.ENotFound,
	http.StatusMethodNotAllowed:      tenantry.EMethodNotAllowed,
	http.StatusConflict:              tenantry.EConflict,
	http.StatusRequestEntityTooLarge: tenantry.EPayloadTooLarge,
	http.StatusUnsupportedMediaType:  tenantry.EUnsupportedMediaType,
	http.StatusUnprocessableEntity:   tenantry.EValidation,
	http.StatusTooManyRequests:       tenantry.ERateLimited,
	http.StatusServiceUnavailable:    tenantry.EUnavailable,
}

const internalMessage = "An internal error occurred"

// statusClientClosedRequest is the status the access log records for a
// request whose client went away before the answer (nginx's convention).
const statusClientClosedRequest = 499

// humaBodyReadFailure is huma's message when reading a request body fails
// for any reason but a timeout.
const humaBodyReadFailure = "cannot read request body"

// unavailableRetryAfter is the Retry-After, in seconds, of a 503 caused by a
// database that cannot serve.
const unavailableRetryAfter = 5

// apiError is an error ready to be written: the envelope's error object and
// its status. It satisfies huma.StatusError so that huma writes it as is.
type apiError struct {
	status     int
	code       string
	message    string
	details    any
	retryAfter int
}

func (e *apiError) Error() string  { return e.code + ": " + e.message }
func (e *apiError) GetStatus() int { return e.status }

// GetHeaders implements huma.HeadersError.
func (e *apiError) GetHeaders() http.Header {
	if e.retryAfter <= 0 {
		return nil
	}
	return http.Header{"Retry-After": []string{strconv.Itoa(e.retryAfter)}}
}

type errorObject struct {
	Code    string `json:"code" doc:"Stable machine-readable error code." example:"NOT_FOUND"`
	Message string `json:"message" doc:"Human-readable explanation."`
	Details any    `json:"details,omitempty" doc:"Structured details, such as validation messages per field."`
}

type errorEnvelope struct {
	Success bool        `json:"success" doc:"Always false for errors."`
	Error   errorObject `json:"error"`
}

func (e *apiError) envelope() errorEnvelope {
	return errorEnvelope{Error: errorObject{Code: e.code, Message: e.message, Details: e.details}}
}

// MarshalJSON writes the error envelope.
func (e *apiError) MarshalJSON() ([]byte, error) { return json.Marshal(e.envelope()) }

// Schema documents the error envelope in the OpenAPI document.
func (e *apiError) Schema(r huma.Registry) *huma.Schema {
	return r.Schema(reflect.TypeFor[errorEnvelope](), true, "Error")
}

// toAPIError turns any error into the response a client sees. Domain errors
// keep their code and message; anything else is logged and reported as an
// internal error without its text.
func toAPIError(ctx context.Context, logger *slog.Logger, err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var te *tenantry.Error
	if errors.As(err, &te) {
		status, ok := statusByCode[te.Code]
		if !ok {
			status = http.StatusInternalServerError
		}
		if status == http.StatusInternalServerError {
			logger.ErrorContext(ctx, "internal error", "error", err)
			return &apiError{status: status, code: tenantry.EInternal, message: internalMessage}
		}
		return &apiError{status: status, code: te.Code, message: te.Message, details: te.Details, retryAfter: te.RetryAfter}
	}
	if ctx.Err() != nil {
		// The client went away, and whatever failed most likely failed
		// because its request was cancelled. Nobody will read this
		// answer; the access log records it as 499.
		logger.InfoContext(ctx, "request abandoned by the client", "error", err)
		return &apiError{status: statusClientClosedRequest, code: tenantry.EBadRequest, message: "Request cancelled"}
	}
	switch {
	case errors.Is(err, sqldb.ErrInvalidValue):
		// The database refused a value the request carried, one that
		// validation let through: the input is at fault, so say so,
		// and log it to find the missing validation.
		logger.WarnContext(ctx, "database refused a request value", "error", err)
		return &apiError{status: http.StatusBadRequest, code: tenantry.EBadRequest, message: "A value in the request cannot be stored"}
	case errors.Is(err, sqldb.ErrUnavailable), errors.Is(err, sqldb.ErrReadOnly), errors.Is(err, sqldb.ErrRetry),
		errors.Is(err, keyring.ErrUnavailable):
		logger.WarnContext(ctx, "a database or the key service is unavailable", "error", err)
		return &apiError{status: http.StatusServiceUnavailable, code: tenantry.EUnavailable,
			message: "The service is temporarily unavailable; try again later", retryAfter: unavailableRetryAfter}
	}
	logger.ErrorContext(ctx, "internal error", "error", err)
	return &apiError{status: http.StatusInternalServerError, code: tenantry.EInternal, message: internalMessage}
}

// fromHuma builds the error for a failure huma detected itself (bad JSON,
// schema validation, body too large) or for an error a handler returned.
// Validation messages are kept, the offending values are not: they may be
// passwords.
func fromHuma(ctx context.Context, logger *slog.Logger, status int, msg string, errs []error) *apiError {
	for _, err := range errs {
		var te *tenantry.Error
		if errors.As(err, &te) || errors.As(err, new(*apiError)) {
			return toAPIError(ctx, logger, err)
		}
	}
	switch {
	case status == http.StatusInternalServerError && msg == humaBodyReadFailure:
		// Reading the body can only fail on the client's side of the
		// connection: it hung up, or sent less than it announced.
		logger.InfoContext(ctx, "request body could not be read", "error", errors.Join(errs...))
		return &apiError{status: http.StatusBadRequest, code: tenantry.EBadRequest, message: "The request body could not be read"}
	case status >= 500:
		logger.ErrorContext(ctx, "internal error", "message", msg, "error", errors.Join(errs...))
		return &apiError{status: http.StatusInternalServerError, code: tenantry.EInternal, message: internalMessage}
	case status == http.StatusUnprocessableEntity || status == http.StatusBadRequest:
		return fromValidation(msg, errs)
	}
	code, ok := codeByStatus[status]
	if !ok {
		code = tenantry.EBadRequest
	}
	return &apiError{status: status, code: code, message: humanize(msg)}
}

// fromValidation sorts huma's findings: problems in the body are field
// validation errors, problems in the query, path or headers are bad requests,
// and a body that does not parse is a bad request.
func fromValidation(msg string, errs []error) *apiError {
	bodyFields := tenantry.FieldErrors{}
	params := tenantry.FieldErrors{}
	malformed := false
	for _, err := range errs {
		var d *huma.ErrorDetail
		if !errors.As(err, &d) {
			continue
		}
		switch {
		case d.Location == "body" && !strings.HasPrefix(d.Message, "expected"):
			// A validation finding on the whole body starts with
			// "expected"; anything else is the JSON decoder failing.
			malformed = true
		case d.Location == "body" || strings.HasPrefix(d.Location, "body."):
			bodyFields.Add(fieldMessage(strings.TrimPrefix(strings.TrimPrefix(d.Location, "body"), "."), d.Message))
		default:
			_, name, _ := strings.Cut(d.Location, ".")
			params.Add(cmpOr(name, d.Location), d.Message)
		}
	}
	switch {
	case malformed:
		return &apiError{status: http.StatusBadRequest, code: tenantry.EBadRequest, message: "Malformed JSON body"}
	case len(params) > 0:
		return &apiError{status: http.StatusBadRequest, code: tenantry.EBadRequest, message: "Invalid request parameters", details: map[string][]string(params)}
	case len(bodyFields) > 0:
		return &apiError{status: http.StatusBadRequest, code: tenantry.EValidation, message: "Validation failed", details: map[string][]string(bodyFields)}
	}
	return &apiError{status: http.StatusBadRequest, code: tenantry.EBadRequest, message: humanize(msg)}
}

// fieldMessage names the body field a finding concerns, in the words clients
// of the original expect ("Unknown field.", "Missing data for required
// field."). Findings about the body as a whole go under "_schema".
func fieldMessage(path, message string) (string, string) {
	if rest, ok := strings.CutPrefix(message, "expected required property "); ok {
		name, _, _ := strings.Cut(rest, " ")
		if path != "" {
			name = path + "." + name
		}
		return name, "Missing data for required field."
	}
	if message == validation.MsgUnexpectedProperty {
		return path, "Unknown field."
	}
	return cmpOr(path, "_schema"), message
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func humanize(msg string) string {
	if msg == "" {
		return "Bad request"
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// installErrorModel makes huma build every error it produces with fromHuma.
// huma exposes this only as a package variable; it is set once, to a
// function that keeps no state, before the first API is built.
var installErrorModel sync.Once //nolint:gochecknoglobals // huma's error hook is process-wide

func useEnvelopeErrors(logger *slog.Logger) {
	installErrorModel.Do(func() {
		// Field names are case-sensitive, as in the original: "Email" is
		// an unknown field, not an alias of "email".
		huma.ValidateStrictCasing = true
		huma.NewErrorWithContext = func(hctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
			ctx := context.Background()
			if hctx != nil {
				ctx = hctx.Context()
			}
			ae := fromHuma(ctx, loggerFrom(ctx, logger), status, msg, errs)
			// huma copies headers only from the error a handler returned,
			// not from the one built here.
			if hctx != nil {
				for k, v := range ae.GetHeaders() {
					hctx.SetHeader(k, v[0])
				}
			}
			return ae
		}
		huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
			return fromHuma(context.Background(), logger, status, msg, errs)
		}
	})
}

// writeError writes err as an enveloped JSON error, for the handlers and
// middleware that run outside huma.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	ae := toAPIError(r.Context(), loggerFrom(r.Context(), logger), err)
	writeAPIError(w, ae)
}

func writeAPIError(w http.ResponseWriter, ae *apiError) {
	for k, v := range ae.GetHeaders() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	_ = json.NewEncoder(w).Encode(ae.envelope())
}
