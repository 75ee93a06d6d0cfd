package serve

import (
	"context"
	"crypto/rand"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

type infoKey struct{}

// info is what serve puts in every request's context.
type info struct {
	requestID string
	coldStart bool
	// lambda is set for a request made from a Lambda invocation.
	lambda bool
	// header backs the response's X-Request-Id value, saving an allocation per
	// invocation; its capacity is 1, so appending to the value copies it.
	header [1]string
}

func withInfo(ctx context.Context, in *info) context.Context {
	return context.WithValue(ctx, infoKey{}, in)
}

// RequestID returns the id of the request ctx belongs to: the AWS request id under
// Lambda, the caller's well-formed X-Request-Id or a generated id in HTTP mode. Outside
// a request served by this package it falls back to the Lambda context's request id,
// and then to "".
func RequestID(ctx context.Context) string {
	if in, ok := ctx.Value(infoKey{}).(*info); ok {
		return in.requestID
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// ColdStart reports whether the request ctx belongs to is the first one this Lambda
// (or HTTP server) handles, that is, the one that paid for the process's start-up.
func ColdStart(ctx context.Context) bool {
	in, ok := ctx.Value(infoKey{}).(*info)
	return ok && in.coldStart
}

// TraceHeader returns the AWS X-Ray trace header of the Lambda invocation ctx belongs
// to (Root=1-...;Parent=...;Sampled=...), which Lambda hands the runtime with each
// invocation and aws-lambda-go puts in the invocation's context and in
// _X_AMZN_TRACE_ID; "" for a request served in HTTP mode, where a caller's trace
// headers are on the request itself.
func TraceHeader(ctx context.Context) string {
	in, ok := ctx.Value(infoKey{}).(*info)
	if !ok || !in.lambda {
		return ""
	}
	if h, ok := ctx.Value(lambdaTraceKey).(string); ok && h != "" {
		return h
	}
	return os.Getenv("_X_AMZN_TRACE_ID")
}

// lambdaTraceKey is the (string) key under which aws-lambda-go puts the invocation's
// trace header in its context.
const lambdaTraceKey = "x-amzn-trace-id"

// maxRequestIDLen bounds an X-Request-Id taken from a caller: it goes into every log
// line of the request.
const maxRequestIDLen = 64

// validRequestID reports whether id is 1 to 64 characters of [A-Za-z0-9._-], safe to
// log and to echo in a header.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns a random id of 26 base32 characters (128 bits).
func newRequestID() string {
	return rand.Text()
}
