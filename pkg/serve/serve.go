// Package serve runs a plain http.Handler either under AWS Lambda (behind API Gateway
// or a function URL) or as an HTTP server (OpenFaaS of-watchdog "http" mode, a
// laptop). It is the only package that knows about Lambda: handlers elsewhere see an
// ordinary *http.Request whose context carries a deadline, a request id
// ([RequestID]) and whether the environment is cold ([ColdStart]).
//
// Under Lambda, each invocation's event is turned into a request with
// aws-lambda-go-api-proxy: HTTP API payload 2.0 and function URL events get a
// payload 2.0 response, REST API (and HTTP API payload 1.0) events get a proxy
// response, decided per event. An event is checked before api-proxy sees it: one
// that API Gateway could not have sent (control characters in its path or headers,
// a method that is not a token) or that api-proxy could not convert is a 400, so
// api-proxy's own prints, which go straight to stdout, never happen and nothing but
// the logger writes there. A panicking handler answers 500 instead of taking the
// execution environment down.
package serve

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Options configures Run, NewLambda and Handler. The zero value is usable.
type Options struct {
	// Name names the function in log lines.
	// default: AWS_LAMBDA_FUNCTION_NAME; empty leaves the attribute out
	Name string

	// Addr is the address the HTTP mode listens on.
	// default: ":8080"
	Addr string

	// Listener, when set, is where the HTTP mode serves instead of listening on Addr:
	// a caller that listens first can report a bind failure, and the address it got,
	// before it says it is listening. Run closes it.
	// default: nil, listen on Addr
	Listener net.Listener

	// Logger receives the start and shutdown lines, and a line for each panic and
	// each event that cannot become a request. Nothing else is logged per request.
	// default: slog.Default()
	Logger *slog.Logger

	// OnShutdown runs once at the end: in HTTP mode when serving ends, after the
	// in-flight requests finished or ShutdownTimeout passed (5 s allowed); under
	// Lambda on SIGTERM, which no invocation overlaps (400 ms allowed: SIGKILL
	// follows about 500 ms after SIGTERM). Use it to close the Redis client.
	// default: nil, nothing runs
	OnShutdown func(context.Context) error

	// DeadlineMargin is taken off the Lambda deadline to make the request's
	// deadline, leaving time to encode and send the response (and to log) before
	// Lambda stops the invocation. When less than the margin is left, the request
	// gets the Lambda deadline itself.
	// default: 200ms; negative: no margin
	DeadlineMargin time.Duration

	// NoDeadlineTimeout bounds a request that has no usable deadline: an invocation
	// without one (old `sam local`) or with one already past, and every request in
	// HTTP mode.
	// default: 30s
	NoDeadlineTimeout time.Duration

	// ShutdownTimeout bounds how long the HTTP mode waits for in-flight requests
	// after a stop signal before it closes their connections.
	// default: 10s
	ShutdownTimeout time.Duration

	// AfterInvoke, when set, runs under Lambda after each invocation's handler has
	// returned and before its response goes back to the runtime, with the
	// invocation's context: once the response is back the environment may be frozen,
	// so per-invocation work that must not be lost (flushing trace spans) goes here.
	// The invocation waits for it: bound it. It never runs in HTTP mode.
	// default: nil
	AfterInvoke func(context.Context)

	// Codec encodes and decodes the Lambda event envelope and response; a faster
	// codec can be dropped in here.
	// default: encoding/json
	Codec Codec
}

// Codec is a JSON codec for the Lambda event envelope and response, with the
// semantics of encoding/json's Marshal and Unmarshal (bytedance/sonic's ConfigStd
// and goccy/go-json's functions fit). Unmarshal must not keep references into data:
// under Lambda it is the runtime's buffer, which aws-lambda-go reuses for the next
// invocation, so a codec that makes strings alias its input (sonic's ConfigDefault)
// has to decode a copy.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

const (
	defaultAddr              = ":8080"
	defaultDeadlineMargin    = 200 * time.Millisecond
	defaultNoDeadlineTimeout = 30 * time.Second
	defaultShutdownTimeout   = 10 * time.Second

	// lambdaShutdownTimeout fits OnShutdown into the ~500 ms between SIGTERM and
	// SIGKILL.
	lambdaShutdownTimeout = 400 * time.Millisecond
	// httpOnShutdownTimeout bounds OnShutdown in HTTP mode, after the drain.
	httpOnShutdownTimeout = 5 * time.Second
)

type stdCodec struct{}

func (stdCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (stdCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = lambdacontext.FunctionName
	}
	if o.Addr == "" {
		o.Addr = defaultAddr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Name != "" {
		o.Logger = o.Logger.With(slog.String("function", o.Name))
	}
	switch {
	case o.DeadlineMargin == 0:
		o.DeadlineMargin = defaultDeadlineMargin
	case o.DeadlineMargin < 0:
		o.DeadlineMargin = 0
	}
	if o.NoDeadlineTimeout <= 0 {
		o.NoDeadlineTimeout = defaultNoDeadlineTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = defaultShutdownTimeout
	}
	if o.Codec == nil {
		o.Codec = stdCodec{}
	}
	return o
}

// Run serves h until the process is told to stop.
//
// When AWS_LAMBDA_RUNTIME_API is set it starts the Lambda runtime with ctx as the
// base context of every invocation and SIGTERM enabled, so OnShutdown runs before
// the environment is killed; in that mode Run does not return (the runtime ends the
// process). Otherwise it serves HTTP on o.Addr until SIGTERM or SIGINT arrives or
// ctx is cancelled, then stops accepting, waits up to ShutdownTimeout for in-flight
// requests, runs OnShutdown and returns: nil after a clean shutdown, else the
// error of serving or draining joined with OnShutdown's. It returns at once, without
// running OnShutdown, when it cannot listen on o.Addr.
func Run(ctx context.Context, h http.Handler, o Options) error {
	o = o.withDefaults()
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		runLambda(ctx, h, o)
		return nil
	}
	return runHTTP(ctx, h, o)
}

// shutdown runs o.OnShutdown with a timeout and logs its outcome.
func shutdown(ctx context.Context, o Options, timeout time.Duration) error {
	if o.OnShutdown == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err := o.OnShutdown(ctx)
	if err != nil {
		o.Logger.LogAttrs(ctx, slog.LevelError, "shutdown hook failed", slog.Any("error", err))
	}
	return err
}
