package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/api"
	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/redisclient"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// newApp parses environ for mode and returns app.New's App with opts, closed when the
// test ends.
func newApp(tb testing.TB, environ map[string]string, mode config.Mode, opts ...app.Option) *app.App {
	tb.Helper()
	cfg, err := config.Parse(environ, mode)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := app.New(cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return a
}

// getProduct asks a's getProduct handler for id and returns the X-Cache header.
func getProduct(tb testing.TB, a *app.App, id string) string {
	tb.Helper()
	w := httptest.NewRecorder()
	a.API.GetProduct().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/products/"+id, nil))
	if w.Code != http.StatusOK {
		tb.Fatalf("GET /products/%s: %d %s", id, w.Code, w.Body)
	}
	return w.Header().Get("X-Cache")
}

// TestNewDoesNoIO: New builds the whole App, in both modes, without building the
// client or opening a connection; the first request does both.
func TestNewDoesNoIO(t *testing.T) {
	for _, mode := range []config.Mode{config.ModeLambda, config.ModeHTTP} {
		t.Run(mode.String(), func(t *testing.T) {
			mr := miniredis.RunT(t)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var accepts atomic.Int64
			go forward(ln, mr.Addr(), &accepts)
			t.Cleanup(func() { _ = ln.Close() })

			a := newApp(t, map[string]string{"REDIS_URL": "redis://" + ln.Addr().String()}, mode)
			if a.Client.Built() || accepts.Load() != 0 {
				t.Fatalf("after New: client built %v, %d connections; want none", a.Client.Built(), accepts.Load())
			}
			if a.API.Redis != a.Client {
				t.Error("the API's client holder is not the App's")
			}
			if got := getProduct(t, a, "prod-0001"); got != "MISS" {
				t.Fatalf("first request: X-Cache %q, want MISS", got)
			}
			if !a.Client.Built() || accepts.Load() == 0 {
				t.Fatal("the first request did not build and dial the client")
			}
		})
	}
}

// forward accepts connections on ln and pipes each to target, counting them.
func forward(ln net.Listener, target string, accepts *atomic.Int64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepts.Add(1)
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c) }()
			_, _ = io.Copy(c, u)
		}()
	}
}

// TestCloseWritesPendingFigures: the HTTP mode writes its figures every 200 requests,
// so one request's outcome is still pending after it; Close writes it and closes the
// client.
func TestCloseWritesPendingFigures(t *testing.T) {
	mr := miniredis.RunT(t)
	cfg, err := config.Parse(map[string]string{"REDIS_URL": "redis://" + mr.Addr(), "CACHE_KEY_PREFIX": "close:dev:"}, config.ModeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	getProduct(t, a, "prod-0002")
	key := api.TallyKey("close:dev:")
	if mr.Exists(key) {
		t.Fatalf("%s written after one request; the test needs it pending", key)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mr.HGet(key, "misses"); got != "1" {
		t.Errorf("after Close, %s misses = %q, want 1", key, got)
	}
	if a.Client.Built() {
		t.Error("the client is still built after Close")
	}
}

// TestNewOptions: each option replaces one part New would otherwise build from the
// configuration.
func TestNewOptions(t *testing.T) {
	mr := miniredis.RunT(t)
	environ := map[string]string{"REDIS_URL": "redis://" + mr.Addr(), "CACHE_KEY_PREFIX": "opts:dev:"}

	t.Run("WithClient", func(t *testing.T) {
		l := redisclient.NewLazy(mustOptions(t, environ))
		a := newApp(t, environ, config.ModeLambda, app.WithClient(l))
		if a.Client != l || a.API.Redis != l {
			t.Fatal("the App does not use the holder it was given")
		}
	})
	t.Run("WithSource", func(t *testing.T) {
		var fetched atomic.Int64
		src := product.SourceFunc(func(ctx context.Context, id string) (product.Product, error) {
			fetched.Add(1)
			return product.Product{ID: id, Name: "Counted"}, nil
		})
		a := newApp(t, environ, config.ModeLambda, app.WithSource(src))
		getProduct(t, a, "prod-0003")
		if fetched.Load() != 1 {
			t.Fatalf("the given source was asked %d times, want 1", fetched.Load())
		}
	})
	t.Run("WithTallyBatch", func(t *testing.T) {
		mr.Del(api.TallyKey("opts:dev:"))
		a := newApp(t, environ, config.ModeLambda, app.WithTallyBatch(1, time.Hour))
		getProduct(t, a, "prod-0004")
		if got := mr.HGet(api.TallyKey("opts:dev:"), "misses"); got != "1" {
			t.Fatalf("after one request with a batch of 1, misses = %q, want 1", got)
		}
	})
}

// mustOptions returns the go-redis options the configuration of environ makes.
func mustOptions(tb testing.TB, environ map[string]string) *redis.UniversalOptions {
	tb.Helper()
	cfg, err := config.Parse(environ, config.ModeLambda)
	if err != nil {
		tb.Fatal(err)
	}
	o, err := redisclient.Options(cfg.Redis)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}
