package fault_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/acmestore/storeapi/pkg/fault"
)

func TestCodeStatus(t *testing.T) {
	tests := []struct {
		code fault.Code
		want int
	}{
		{fault.Invalid, 400},
		{fault.Unauthorized, 401},
		{fault.Forbidden, 403},
		{fault.NotFound, 404},
		{fault.NoRoute, 404},
		{fault.MethodNotAllowed, 405},
		{fault.TooLarge, 413},
		{fault.UnsupportedMediaType, 415},
		{fault.Internal, 500},
		{fault.SourceUnavailable, 502},
		{fault.RedisUnavailable, 503},
		{fault.Timeout, 504},
		{"no_such_code", 500},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := tt.code.Status(); got != tt.want {
				t.Fatalf("Status = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	const internal = "dial tcp 10.0.3.7:6379: connect: connection refused"
	redisDown := &fault.Error{Code: fault.RedisUnavailable, Message: "Redis is unavailable.", Cause: fault.CauseConnectionRefused}
	tests := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"error", fault.New(fault.NotFound, "no product with this id"), 404,
			`{"error":"no product with this id","code":"not_found","requestId":"rid-1"}`},
		{"with a cause", redisDown, 503,
			`{"error":"Redis is unavailable.","code":"redis_unavailable","cause":"connection_refused","requestId":"rid-1"}`},
		{"wrapped", fmt.Errorf("api: clear: %w", redisDown), 503,
			`{"error":"Redis is unavailable.","code":"redis_unavailable","cause":"connection_refused","requestId":"rid-1"}`},
		{"internal failure", errors.New(internal), 500,
			`{"error":"internal error","code":"internal","requestId":"rid-1"}`},
		{"nil", nil, 500, `{"error":"internal error","code":"internal","requestId":"rid-1"}`},
		{"nil *Error", (*fault.Error)(nil), 500, `{"error":"internal error","code":"internal","requestId":"rid-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("Allow", "GET, OPTIONS")
			w.Header().Set("Cache-Control", "max-age=60")
			fault.Write(w, "rid-1", tt.err)
			if w.Code != tt.status || w.Body.String() != tt.body+"\n" {
				t.Fatalf("got %d %s, want %d %s", w.Code, w.Body, tt.status, tt.body)
			}
			h := w.Header()
			if h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("Cache-Control") != "no-store" || h.Get("Allow") != "GET, OPTIONS" {
				t.Fatalf("headers %v", h)
			}
		})
	}
}

func ExampleWrite() {
	w := httptest.NewRecorder()
	fault.Write(w, "c6af9ac6", fault.New(fault.NotFound, "no product with this id"))
	fmt.Printf("%d %s", w.Code, w.Body)

	// An internal failure's text never reaches the client.
	w = httptest.NewRecorder()
	fault.Write(w, "c6af9ac7", errors.New("source: GET http://10.0.3.7/products/1: EOF"))
	fmt.Printf("%d %s", w.Code, w.Body)
	// Output:
	// 404 {"error":"no product with this id","code":"not_found","requestId":"c6af9ac6"}
	// 500 {"error":"internal error","code":"internal","requestId":"c6af9ac7"}
}

func ExampleCode_Status() {
	fmt.Println(fault.RedisUnavailable.Status(), http.StatusText(fault.RedisUnavailable.Status()))
	// Output: 503 Service Unavailable
}
