package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAfterInvoke: the hook runs once per invocation, after the handler, for both
// event shapes, with the runtime's context; and never in HTTP mode.
func TestAfterInvoke(t *testing.T) {
	type key struct{}
	var order []string
	o := quietOptions()
	o.AfterInvoke = func(ctx context.Context) {
		if ctx.Value(key{}) != "runtime" {
			t.Error("AfterInvoke did not get the invocation's context")
		}
		order = append(order, "after")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { order = append(order, "handler") })
	l := NewLambda(h, o)
	ctx := context.WithValue(context.Background(), key{}, "runtime")
	for _, v2 := range []bool{true, false} {
		order = nil
		if _, err := l.Invoke(ctx, event(v2, "GET", "/")); err != nil {
			t.Fatal(err)
		}
		if len(order) != 2 || order[0] != "handler" || order[1] != "after" {
			t.Errorf("v2 %v: order %v, want [handler after]", v2, order)
		}
	}
	order = nil
	Handler(h, o).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if len(order) != 1 {
		t.Errorf("HTTP mode: %v, want the handler only", order)
	}
}

// TestTraceHeader: a Lambda request's trace header comes from aws-lambda-go's
// context value, else _X_AMZN_TRACE_ID; an HTTP mode request has none, whatever the
// environment holds.
func TestTraceHeader(t *testing.T) {
	const env, fromCtx = "Root=1-00000001-000000000000000000000001;Parent=0000000000000001;Sampled=1",
		"Root=1-00000002-000000000000000000000002;Parent=0000000000000002;Sampled=1"
	t.Setenv("_X_AMZN_TRACE_ID", env)
	var got string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = TraceHeader(r.Context()) })
	l := NewLambda(h, quietOptions())
	if _, err := l.Invoke(context.Background(), event(true, "GET", "/")); err != nil {
		t.Fatal(err)
	}
	if got != env {
		t.Errorf("from the environment: %q", got)
	}
	//lint:ignore SA1029 aws-lambda-go's own key is a plain string.
	ctx := context.WithValue(context.Background(), lambdaTraceKey, fromCtx) //nolint:staticcheck
	if _, err := l.Invoke(ctx, event(true, "GET", "/")); err != nil {
		t.Fatal(err)
	}
	if got != fromCtx {
		t.Errorf("from the context: %q", got)
	}
	got = "unset"
	Handler(h, quietOptions()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got != "" {
		t.Errorf("HTTP mode: %q, want none", got)
	}
}
