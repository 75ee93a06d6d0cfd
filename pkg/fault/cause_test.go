package fault_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/redis/go-redis/v9"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// redisReply is an error reply as go-redis returns it (it implements redis.Error).
type redisReply string

func (e redisReply) Error() string { return string(e) }
func (redisReply) RedisError()     {}

// ownCause is an error from another package that names its own cause, as
// secret.Error does.
type ownCause struct{ err error }

func (e ownCause) Error() string    { return "own: " + e.err.Error() }
func (e ownCause) Unwrap() error    { return e.err }
func (ownCause) Cause() fault.Cause { return fault.CauseSecret }

func TestClassify(t *testing.T) {
	reply := func(s string) error { return redisReply(s) }
	tests := []struct {
		err   error
		want  fault.Cause
		fault bool
	}{
		{nil, fault.CauseNone, false},
		{redis.Nil, fault.CauseNone, false},
		{reply("WRONGPASS invalid username-password pair or user is disabled."), fault.CauseAuthFailed, true},
		{reply("NOAUTH Authentication required."), fault.CauseAuthFailed, true},
		{reply("OOM command not allowed when used memory > 'maxmemory'."), fault.CauseOutOfMemory, false},
		{reply("WRONGTYPE Operation against a key holding the wrong kind of value"), fault.CauseWrongType, false},
		{reply("LOADING Redis is loading the dataset in memory"), fault.CauseLoading, true},
		{reply("CLUSTERDOWN The cluster is down"), fault.CauseClusterDown, true},
		{reply("READONLY You can't write against a read only replica."), fault.CauseReadOnly, true},
		{reply("ERR unknown command"), fault.CauseServerError, false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, fault.CauseConnectionRefused, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, fault.CauseTimeout, true},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), fault.CauseTimeout, true},
		{context.Canceled, fault.CauseCanceled, false},
		{io.EOF, fault.CauseConnectionReset, true},
		{&net.DNSError{Err: "no such host", Name: "redis.internal", IsNotFound: true}, fault.CauseUnresolvable, true},
		{redis.ErrClosed, fault.CauseClosed, true},
		{redis.ErrPoolTimeout, fault.CausePoolExhausted, true},
		{fmt.Errorf("dial: %w", errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority")), fault.CauseTLS, true},
		// An error that names its own cause wins over what it wraps, but not over a
		// cancellation.
		{fmt.Errorf("dial: %w", ownCause{context.DeadlineExceeded}), fault.CauseSecret, true},
		{fmt.Errorf("dial: %w", ownCause{io.EOF}), fault.CauseSecret, true},
		{ownCause{context.Canceled}, fault.CauseCanceled, false},
	}
	for _, tt := range tests {
		name := "nil"
		if tt.err != nil {
			name = tt.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			got := fault.Classify(tt.err)
			if got != tt.want || got.Fault() != tt.fault {
				t.Fatalf("Classify = %q (fault %v), want %q (fault %v)", got, got.Fault(), tt.want, tt.fault)
			}
			if got != fault.CauseNone && got.Message() == "" {
				t.Fatalf("cause %q has no message", got)
			}
		})
	}
}
