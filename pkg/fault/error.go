package fault

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Code classifies a failure for the client: it sets the HTTP status of the answer
// (Status) and is sent as the "code" member of the error body.
type Code string

// The codes, with their HTTP statuses.
const (
	Invalid              Code = "invalid_request"        // 400: a bad id, body or event
	Unauthorized         Code = "unauthorized"           // 401: a missing or wrong token
	Forbidden            Code = "forbidden"              // 403: refused whatever the token
	NotFound             Code = "not_found"              // 404: no such resource
	NoRoute              Code = "no_route"               // 404: no such path
	MethodNotAllowed     Code = "method_not_allowed"     // 405: a known path, another method
	TooLarge             Code = "body_too_large"         // 413
	UnsupportedMediaType Code = "unsupported_media_type" // 415: a body that is not of the accepted type
	Internal             Code = "internal"               // 500: a bug, such as a panic
	SourceUnavailable    Code = "source_unavailable"     // 502: the product source failed
	RedisUnavailable     Code = "redis_unavailable"      // 503: Redis failed; see the Cause
	Timeout              Code = "timeout"                // 504: a dependency did not answer in time
)

// statuses is the one table from codes to HTTP statuses.
var statuses = map[Code]int{
	Invalid:              http.StatusBadRequest,
	Unauthorized:         http.StatusUnauthorized,
	Forbidden:            http.StatusForbidden,
	NotFound:             http.StatusNotFound,
	NoRoute:              http.StatusNotFound,
	MethodNotAllowed:     http.StatusMethodNotAllowed,
	TooLarge:             http.StatusRequestEntityTooLarge,
	UnsupportedMediaType: http.StatusUnsupportedMediaType,
	Internal:             http.StatusInternalServerError,
	SourceUnavailable:    http.StatusBadGateway,
	RedisUnavailable:     http.StatusServiceUnavailable,
	Timeout:              http.StatusGatewayTimeout,
}

// Status is the HTTP status that answers the code; 500 for a code not in the table,
// since an unknown code is a bug.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is a failure as a client sees it. Its message is a fixed text, never client
// input and never an internal error's text: what went wrong in detail goes to the log.
type Error struct {
	Code    Code
	Message string
	// Cause is the classified Redis failure behind the error, if any.
	Cause Cause
}

// New returns an *Error with code and the fixed message msg.
func New(code Code, msg string) *Error {
	return &Error{Code: code, Message: msg}
}

// Error returns "fault: code: message".
func (e *Error) Error() string {
	return "fault: " + string(e.Code) + ": " + e.Message
}

// internal is what a client sees of an error that is not an *Error.
var internal = &Error{Code: Internal, Message: "internal error"}

// body is the one shape of every error response.
type body struct {
	Error     string `json:"error"`
	Code      Code   `json:"code"`
	Cause     Cause  `json:"cause,omitempty"`
	RequestID string `json:"requestId"`
}

// Write answers err as a JSON error body: the status of its code, its message, code
// and cause, and requestID, the id that finds the request's log line. err is the
// first *Error in its chain; without one (nil or any other error) the answer is a
// 500 internal error and err's text is not sent, so log it before. Write sets
// Content-Type, X-Content-Type-Options and Cache-Control (no-store) and leaves the
// other headers already set, such as Allow or WWW-Authenticate, as they are.
func Write(w http.ResponseWriter, requestID string, err error) {
	var e *Error
	if !errors.As(err, &e) || e == nil {
		e = internal
	}
	// Only strings: Marshal cannot fail.
	b, _ := json.Marshal(body{Error: e.Message, Code: e.Code, Cause: e.Cause, RequestID: requestID})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Code.Status())
	_, _ = w.Write(append(b, '\n'))
}
