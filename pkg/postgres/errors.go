package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/acmestore/storeapi/pkg/secret"
	"github.com/jackc/pgx/v5/pgconn"
)

// Cause is a classified database failure: a fixed name and a fixed, plain message that
// are safe to show to anyone. The raw error, which names hosts, users and databases,
// belongs in the log only.
type Cause string

// The causes an [*Error] carries.
const (
	// CauseUnavailable: no connection could be made or kept (refused, reset, a name
	// that does not resolve, the server shutting down or starting up).
	CauseUnavailable Cause = "db_unavailable"
	// CauseTimeout: the query did not finish before its deadline (the request's, or
	// the source's query timeout), or the connect did not.
	CauseTimeout Cause = "db_timeout"
	// CauseCanceled: the caller gave up first.
	CauseCanceled Cause = "db_canceled"
	// CauseAuthFailed: the server refused the credentials or the database name.
	CauseAuthFailed Cause = "db_auth_failed"
	// CauseSecret: the password could not be read from AWS Secrets Manager.
	CauseSecret Cause = "db_secret_unavailable"
	// CauseOverloaded: the server refused a connection for lack of slots
	// (max_connections), or ran out of a resource.
	CauseOverloaded Cause = "db_overloaded"
	// CauseSchema: the products table is missing or not the shape this code reads
	// (the migrations have not been applied).
	CauseSchema Cause = "db_schema"
	// CauseError: any other error the server reported.
	CauseError Cause = "db_error"
)

var messages = map[Cause]string{
	CauseUnavailable: "The product database cannot be reached.",
	CauseTimeout:     "The product database did not answer in time.",
	CauseCanceled:    "The request was cancelled before the product database answered.",
	CauseAuthFailed:  "The product database refused the credentials.",
	CauseSecret:      "The product database password could not be read from AWS Secrets Manager.",
	CauseOverloaded:  "The product database has no capacity for this request.",
	CauseSchema:      "The product database has no products table of the expected shape (run the migrations).",
	CauseError:       "The product database reported an error.",
}

// Message is the cause's fixed human-readable text.
func (c Cause) Message() string { return messages[c] }

// Error is a failed database operation. Its message names the operation, the product
// id and the cause, then the driver's error, which may name the host, user and
// database but never the password: it belongs in a log. errors.Is matches
// context.DeadlineExceeded for [CauseTimeout] and context.Canceled for
// [CauseCanceled], so callers that map timeouts to 504 need not know this package.
type Error struct {
	Op    string // "get", "connect", "listen", ...
	ID    string // the product id, if any
	Cause Cause
	Err   error // the driver's error
}

// Error returns "postgres: op "id": cause: driver error".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("postgres: ")
	b.WriteString(e.Op)
	if e.ID != "" {
		b.WriteString(` "` + e.ID + `"`)
	}
	b.WriteString(": " + string(e.Cause))
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the driver's error and, for a timeout or a cancellation, the
// context's error it stands for.
func (e *Error) Unwrap() []error {
	errs := []error{e.Err}
	switch e.Cause {
	case CauseTimeout:
		errs = append(errs, context.DeadlineExceeded)
	case CauseCanceled:
		errs = append(errs, context.Canceled)
	}
	return errs
}

// CauseOf returns the cause of err: the Cause of an [*Error] in its chain, else a
// classification of a pgx or network error; "" for nil.
func CauseOf(err error) Cause {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Cause
	}
	return classify(err)
}

// wrap returns err classified as an *Error of op on id (nil for nil).
func wrap(op, id string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Op: op, ID: id, Cause: classify(err), Err: err}
}

// classify names the cause of an error from pgx, the network or a context.
func classify(err error) Cause {
	if _, ok := errors.AsType[*secret.Error](err); ok {
		return CauseSecret
	}
	// The context first: a query the caller gave up on may also come back as the
	// server's "canceling statement due to user request".
	switch {
	case errors.Is(err, context.Canceled):
		return CauseCanceled
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return CauseTimeout
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		return classifyState(pe.Code)
	}
	_, connecting := errors.AsType[*pgconn.ConnectError](err)
	switch {
	case isTimeout(err):
		return CauseTimeout
	case connecting,
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, pgconn.ErrConnClosed):
		return CauseUnavailable
	}
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return CauseUnavailable
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return CauseUnavailable
	}
	if strings.Contains(err.Error(), "conn closed") {
		return CauseUnavailable
	}
	return CauseError
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// classifyState maps a SQLSTATE to a cause.
func classifyState(code string) Cause {
	switch {
	case code == "57014": // query_canceled: statement_timeout, or a cancel request
		return CauseTimeout
	case code == "28P01", code == "28000", code == "3D000": // bad password, no such role, no such database
		return CauseAuthFailed
	case code == "53300", strings.HasPrefix(code, "53"): // too_many_connections, out of resources
		return CauseOverloaded
	case code == "57P01", code == "57P02", code == "57P03", // admin shutdown, crash shutdown, cannot connect now
		strings.HasPrefix(code, "08"): // connection exceptions
		return CauseUnavailable
	case code == "42P01", code == "42703", code == "42883", code == "3F000": // no table, column, function, schema
		return CauseSchema
	}
	return CauseError
}
