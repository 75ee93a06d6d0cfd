// Package fault names what went wrong, in terms that are safe to show to anyone, and
// is the one way an error reaches a client.
//
// A Redis failure is classified into a [Cause] (auth_failed, connection_refused,
// timeout, out_of_memory, ...) with a fixed, plain message. [Classify] knows
// go-redis's and the network's errors; any other error names its own cause with a
// method Cause() Cause, so this package depends on none of the packages whose errors
// it classifies.
//
// A failure answered to a client is an [*Error]: a [Code], which maps to the HTTP
// status in one table ([Code.Status]), a fixed message and, for a Redis failure, its
// cause. [Write] is the only writer of error responses, so every error body has the
// same shape:
//
//	{"error": "no product with this id", "code": "not_found", "requestId": "..."}
//
// with "cause" added for a Redis failure. An error that is not an *Error is answered
// as an internal error whose text is never sent: the raw error, which can carry
// internal addresses, belongs in the log only.
package fault
