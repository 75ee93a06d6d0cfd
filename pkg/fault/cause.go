package fault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Cause is a classified Redis failure: a fixed name and a fixed, plain message that are
// safe to show to anyone. The raw error, which can carry internal addresses, belongs in
// the log only.
type Cause string

// The causes. Fault reports which of them mean Redis cannot be used right now.
const (
	CauseNone              Cause = ""
	CauseAuthFailed        Cause = "auth_failed"
	CauseConnectionRefused Cause = "connection_refused"
	CauseConnectionReset   Cause = "connection_reset"
	CauseTimeout           Cause = "timeout"
	CauseUnresolvable      Cause = "host_not_found"
	CauseUnreachable       Cause = "unreachable"
	CauseTLS               Cause = "tls_error"
	CauseLoading           Cause = "loading"
	CauseClusterDown       Cause = "cluster_down"
	CauseReadOnly          Cause = "read_only"
	CausePoolExhausted     Cause = "pool_exhausted"
	CauseClosed            Cause = "client_closed"
	CauseOutOfMemory       Cause = "out_of_memory"
	CauseWrongType         Cause = "wrong_type"
	CauseCanceled          Cause = "canceled"
	CauseSecret            Cause = "secret_unavailable"
	CauseServerError       Cause = "server_error"
	CauseUnknown           Cause = "unknown"
)

var messages = map[Cause]string{
	CauseAuthFailed:        "Redis refused the credentials (authentication failed).",
	CauseConnectionRefused: "Redis refused the connection (nothing listening at the configured address).",
	CauseConnectionReset:   "The connection to Redis was closed or reset.",
	CauseTimeout:           "Redis did not answer in time.",
	CauseUnresolvable:      "The Redis host name could not be resolved.",
	CauseUnreachable:       "The Redis address is unreachable.",
	CauseTLS:               "The TLS handshake with Redis failed (certificate or protocol).",
	CauseLoading:           "Redis is loading its dataset and not serving yet.",
	CauseClusterDown:       "The Redis cluster cannot serve this key right now.",
	CauseReadOnly:          "Redis is a read-only replica.",
	CausePoolExhausted:     "All Redis connections are busy.",
	CauseClosed:            "The Redis client is closed.",
	CauseOutOfMemory:       "Redis is out of memory and refuses writes.",
	CauseWrongType:         "A key holds a value of another type.",
	CauseCanceled:          "The request was cancelled before Redis answered.",
	CauseSecret:            "The Redis password could not be read from AWS Secrets Manager.",
	CauseServerError:       "Redis answered with an error.",
	CauseUnknown:           "Redis failed for an unknown reason.",
}

// Message is the cause's fixed human-readable text.
func (c Cause) Message() string { return messages[c] }

// Fault reports whether the cause means Redis is unusable (a connection fault, a
// timeout, a server that cannot serve): these count against the circuit breaker. A
// reply from a working server (out of memory, wrong type, another error) is not a fault:
// reads still work when writes fail.
func (c Cause) Fault() bool {
	switch c {
	case CauseNone, CauseOutOfMemory, CauseWrongType, CauseServerError, CauseCanceled:
		return false
	}
	return true
}

// causer is an error that knows its own cause, such as a failed read of the Redis
// password from AWS Secrets Manager (secret.Error).
type causer interface {
	error
	Cause() Cause
}

// Classify names the cause of a go-redis error. A nil error and redis.Nil (a miss) are
// CauseNone; a cancelled context is CauseCanceled, whatever else the error says. An
// error in err's chain with a method Cause() Cause names its own cause.
func Classify(err error) Cause {
	if err == nil || errors.Is(err, redis.Nil) {
		return CauseNone
	}
	if errors.Is(err, context.Canceled) {
		return CauseCanceled
	}
	var c causer
	if errors.As(err, &c) {
		return c.Cause()
	}
	if errors.Is(err, redis.ErrClosed) {
		return CauseClosed
	}
	if errors.Is(err, redis.ErrPoolTimeout) {
		return CausePoolExhausted
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		return classifyReply(rerr.Error())
	}
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return CauseTimeout
		}
		return CauseUnresolvable
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &recErr), errors.As(err, &alert):
		return CauseTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseConnectionRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return CauseUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return CauseConnectionReset
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return CauseTimeout
	}
	if strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:") {
		return CauseTLS
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return CauseUnreachable
	}
	return classifyReply(err.Error())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func classifyReply(msg string) Cause {
	prefix, _, _ := strings.Cut(msg, " ")
	switch prefix {
	case "NOAUTH", "WRONGPASS", "NOPERM":
		return CauseAuthFailed
	case "OOM":
		return CauseOutOfMemory
	case "WRONGTYPE":
		return CauseWrongType
	case "LOADING":
		return CauseLoading
	case "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "MOVED", "ASK":
		return CauseClusterDown
	case "READONLY":
		return CauseReadOnly
	case "ERR":
		if strings.Contains(msg, "invalid password") || strings.Contains(msg, "AUTH") {
			return CauseAuthFailed
		}
		if strings.Contains(msg, "max number of clients") {
			return CausePoolExhausted
		}
		return CauseServerError
	}
	if strings.Contains(msg, "invalid username-password") {
		return CauseAuthFailed
	}
	return CauseUnknown
}
