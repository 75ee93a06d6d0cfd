package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// Lambda answers API Gateway (HTTP API payload 2.0 and 1.0, REST API) and function
// URL invocations with an http.Handler. It implements lambda.Handler, so the runtime
// hands it the raw event bytes, and tests and benchmarks can drive the whole Lambda
// path in-process through Invoke. It is safe for concurrent use.
type Lambda struct {
	h    http.Handler
	o    Options
	warm atomic.Bool
	// The accessors are only read (no base path is set), so they are shared by
	// concurrent invocations.
	rest   core.RequestAccessor
	httpV2 core.RequestAccessorV2
}

var _ lambda.Handler = (*Lambda)(nil)

// errNotObject is returned for a payload that is not a JSON object.
var errNotObject = errors.New("serve: event is not a JSON object")

// NewLambda returns a Lambda that serves h.
func NewLambda(h http.Handler, o Options) *Lambda {
	return newLambda(h, o.withDefaults())
}

func newLambda(h http.Handler, o Options) *Lambda {
	return &Lambda{h: h, o: o}
}

// Invoke answers one invocation: payload is the event as the runtime received it,
// and the result is the JSON response in the shape that matches the event (payload
// 2.0 for "version":"2.0" events, the proxy response otherwise).
//
// The handler's request carries the invocation's deadline less DeadlineMargin, or
// NoDeadlineTimeout from now when the invocation has no deadline or one already
// past; the request id; and whether this is the cold start. A handler panic is
// answered with a 500 JSON body and logged. An event that cannot become a request,
// or that API Gateway could not have sent (a method that is not a token; a control
// character in the path, a header or the query string; a header name that is not a
// token; a bad base64 body; a path that does not parse), is answered with 400 and
// one WARN line that says why, never what the event held; api-proxy never sees it,
// so its own prints (to stdout, and with the log package) do not happen. Invoke
// returns an error, which the runtime reports as a failed invocation, only for a
// payload that is not an API Gateway or function URL event.
func (l *Lambda) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	switch kind := kindOf(payload); kind {
	case kindHTTPv2:
		return l.invokeV2(ctx, payload)
	case kindREST, kindHTTPv1:
		return l.invokeV1(ctx, payload, kind)
	}
	return nil, errNotObject
}

func (l *Lambda) invokeV2(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := l.o.Codec.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("serve: decode HTTP API event: %w", err)
	}
	if ev.RequestContext.HTTP.Method == "" {
		return nil, errors.New("serve: event has no requestContext.http.method: not an HTTP API or function URL event")
	}
	// api-proxy routes on rawPath (falling back to requestContext.http.path), which
	// starts with the stage for any stage but $default. The request context itself
	// is left as API Gateway sent it.
	if ev.RawPath == "" {
		ev.RawPath = ev.RequestContext.HTTP.Path
	}
	ev.RawPath = stripStage(ev.RawPath, ev.RequestContext.Stage)

	rt := ctx
	ctx, cancel, in := l.begin(ctx, ev.RequestContext.RequestID)
	defer cancel()
	var r *http.Request
	err := checkV2(&ev)
	if err == nil {
		// The WithContext variant puts the API Gateway context into the request's
		// context; the plain one would JSON-encode it into a header on every call.
		if r, err = l.httpV2.EventToRequestWithContext(ctx, ev); err != nil {
			err = errEventConvert
		}
	}
	resp := serveEvent(l, ctx, in, r, err, core.NewProxyResponseWriterV2)
	l.after(rt)
	out, err := l.o.Codec.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("serve: encode HTTP API response: %w", err)
	}
	return out, nil
}

func (l *Lambda) invokeV1(ctx context.Context, payload []byte, kind eventKind) ([]byte, error) {
	var ev events.APIGatewayProxyRequest
	if err := l.o.Codec.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("serve: decode API Gateway proxy event: %w", err)
	}
	if ev.HTTPMethod == "" {
		return nil, errors.New("serve: event has no httpMethod: not an API Gateway proxy event")
	}
	// api-proxy routes on "path". A REST API leaves the stage out of it (only
	// requestContext.path has it); an HTTP API sending payload 1.0 puts a named
	// stage in front, as it does in rawPath.
	if kind == kindHTTPv1 {
		ev.Path = stripStage(ev.Path, ev.RequestContext.Stage)
	}

	rt := ctx
	ctx, cancel, in := l.begin(ctx, ev.RequestContext.RequestID)
	defer cancel()
	var r *http.Request
	err := checkV1(&ev)
	if err == nil {
		if r, err = l.rest.EventToRequestWithContext(ctx, ev); err != nil {
			err = errEventConvert
		}
	}
	resp := serveEvent(l, ctx, in, r, err, core.NewProxyResponseWriter)
	l.after(rt)
	out, err := l.o.Codec.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("serve: encode API Gateway proxy response: %w", err)
	}
	return out, nil
}

// begin makes the context of one invocation's request: its deadline, request id and
// cold-start flag.
func (l *Lambda) begin(ctx context.Context, eventRequestID string) (context.Context, context.CancelFunc, *info) {
	id := ""
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		id = lc.AwsRequestID
	}
	if id == "" {
		id = eventRequestID
	}
	if id == "" {
		id = newRequestID()
	}
	in := &info{requestID: id, coldStart: l.firstRequest(), lambda: true}
	ctx, cancel := l.deadline(ctx)
	return withInfo(ctx, in), cancel, in
}

// deadline returns ctx with the Lambda deadline less the margin. Without a usable
// deadline (none, or already past, as old `sam local` caused: aws-lambda-go then
// hands out a context that is already cancelled) the request gets NoDeadlineTimeout
// from now, on a context that keeps ctx's values but not its cancellation.
func (l *Lambda) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	now := time.Now()
	d, ok := ctx.Deadline()
	if !ok || !d.After(now) {
		return context.WithDeadline(context.WithoutCancel(ctx), now.Add(l.o.NoDeadlineTimeout))
	}
	if m := d.Add(-l.o.DeadlineMargin); m.After(now) {
		d = m
	}
	return context.WithDeadline(ctx, d)
}

// after runs AfterInvoke, if any, on the runtime's context of the invocation (its
// deadline, not the request's, which the margin shortened).
func (l *Lambda) after(ctx context.Context) {
	if l.o.AfterInvoke != nil {
		l.o.AfterInvoke(ctx)
	}
}

func (l *Lambda) firstRequest() bool {
	return !l.warm.Load() && l.warm.CompareAndSwap(false, true)
}

// proxyWriter is api-proxy's response writer for one event shape.
type proxyWriter[R any] interface {
	http.ResponseWriter
	GetProxyResponse() (R, error)
}

// serveEvent runs the handler on r (or answers 400 when the event could not become a
// request, reqErr being one of the fixed errEvent errors) and returns the response in
// the event's shape.
func serveEvent[R any, W proxyWriter[R]](l *Lambda, ctx context.Context, in *info, r *http.Request, reqErr error, newWriter func() W) R {
	w := newWriter()
	if reqErr != nil {
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "bad request event",
			slog.String("requestId", in.requestID), slog.Any("error", reqErr))
		writeError(w, in.requestID, errBadEvent)
	} else {
		in.header[0] = in.requestID
		w.Header()[requestIDHeader] = in.header[:]
		if p, stack := call(l.h, w, r); p != nil {
			logPanic(ctx, l.o.Logger, in.requestID, p, stack)
			// Whatever the handler wrote is dropped: the client gets a whole 500.
			w = newWriter()
			writeError(w, in.requestID, errPanic)
		}
	}
	resp, err := w.GetProxyResponse()
	if err != nil {
		// The handler wrote nothing; net/http would answer 200 with no body.
		w.WriteHeader(http.StatusOK)
		resp, _ = w.GetProxyResponse()
	}
	return resp
}

// runLambda starts the Lambda runtime; it does not return.
func runLambda(ctx context.Context, h http.Handler, o Options) {
	l := newLambda(h, o)
	o.Logger.LogAttrs(ctx, slog.LevelInfo, "start", slog.String("mode", "lambda"))
	var once atomic.Bool
	onSIGTERM := func() {
		if !once.CompareAndSwap(false, true) {
			return
		}
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "shutdown", slog.String("mode", "lambda"))
		_ = shutdown(ctx, o, lambdaShutdownTimeout)
	}
	// Without WithEnableSIGTERM, Lambda (and the emulator) stop the runtime with
	// SIGKILL and OnShutdown never runs.
	lambda.StartWithOptions(l, lambda.WithContext(ctx), lambda.WithEnableSIGTERM(onSIGTERM))
}
