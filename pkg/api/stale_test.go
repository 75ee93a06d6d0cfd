package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/logbuf"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/alicebob/miniredis/v2"
)

// flakySource is the catalog, failing while down is set.
type flakySource struct {
	product.Source
	down  atomic.Bool
	reads atomic.Int64
}

func (s *flakySource) Product(ctx context.Context, id string) (product.Product, error) {
	s.reads.Add(1)
	if s.down.Load() {
		return product.Product{}, errors.New("connection refused by the product database")
	}
	return s.Source.Product(ctx, id)
}

// TestGetProductStale: past its TTL a product is served STALE from Redis, with the
// Warning that says which kind, and the request line says what the refresh did. The
// TTL is 50 ms and the test waits 150 ms: the entry is surely past it.
func TestGetProductStale(t *testing.T) {
	cat, err := product.NewCatalog(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		mode    config.Mode
		env     map[string]string
		down    bool
		xcache  string
		warning string
		line    []string
	}{
		// Under Lambda the invocation that takes the refresh lease refreshes before
		// it answers: a MISS with the new entry.
		{"lambda swr", config.ModeLambda, map[string]string{"CACHE_STALE_WHILE_REVALIDATE": "1h"}, false, "MISS", "", []string{`"refresh":"stale"`}},
		// In the HTTP mode every reader is served at once; the refresh runs after.
		{"http swr", config.ModeHTTP, map[string]string{"CACHE_STALE_WHILE_REVALIDATE": "1h"}, false, "STALE", `110 - "Response is Stale"`, []string{`"refresh":"background"`, `"staleForMs":`}},
		// Past the revalidate window, a source that fails gets the stored product
		// served, with the source's error in the line.
		{"stale if error", config.ModeLambda, map[string]string{"CACHE_STALE_WHILE_REVALIDATE": "0s", "CACHE_STALE_IF_ERROR": "1h"}, true, "STALE", `111 - "Revalidation Failed"`,
			[]string{`"refresh":"stale"`, `"sourceError":"connection refused by the product database"`, `"cache":"STALE"`, `"CacheStale":1`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mr := miniredis.RunT(t)
			env := map[string]string{"REDIS_URL": "redis://" + mr.Addr(), "PRODUCT_CACHE_TTL": "50ms", "CACHE_TTL_JITTER": "0", "CACHE_EARLY_REFRESH": "0"}
			for k, v := range tt.env {
				env[k] = v
			}
			src := &flakySource{Source: cat}
			a := apptest.Build(t, env, tt.mode, app.WithSource(src))
			var log logbuf.Buffer
			h := app.Handler(app.GetProduct, a, telemetry.NewLogger(&log, a.Config.LogLevel))
			get := func() *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", "/products/prod-0001", nil))
				return w
			}
			first := get()
			if first.Code != 200 || first.Header().Get("X-Cache") != "MISS" {
				t.Fatalf("first = %d %s", first.Code, first.Header().Get("X-Cache"))
			}
			time.Sleep(150 * time.Millisecond)
			src.down.Store(tt.down)
			log.Reset()
			w := get()
			if w.Code != 200 || w.Header().Get("X-Cache") != tt.xcache || w.Header().Get("Warning") != tt.warning {
				t.Fatalf("past the TTL = %d X-Cache %q Warning %q; want 200 %q %q", w.Code, w.Header().Get("X-Cache"), w.Header().Get("Warning"), tt.xcache, tt.warning)
			}
			if w.Body.String() != first.Body.String() {
				t.Fatalf("body %q, want the product", w.Body.String())
			}
			line := log.String()
			for _, want := range tt.line {
				if !strings.Contains(line, want) {
					t.Errorf("request line lacks %s: %s", want, line)
				}
			}
			if err := a.Cache.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := src.reads.Load(); n != 2 {
				t.Fatalf("source read %d times, want 2 (the fill and one refresh)", n)
			}
		})
	}
}
