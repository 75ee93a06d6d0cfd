package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/product"
)

// productServer serves the catalog as the HTTP product source expects it (GET
// /{id}: the product as JSON, 404 for an unknown id).
func productServer(tb testing.TB) *httptest.Server {
	tb.Helper()
	cat, err := product.NewCatalog(0)
	if err != nil {
		tb.Fatal(err)
	}
	return serveProducts(tb, cat.Product)
}

// serveProducts serves get as the HTTP product source expects it: GET /{id} answers
// the product as JSON, 404 for product.ErrNotFound, 500 for any other error.
func serveProducts(tb testing.TB, get func(context.Context, string) (product.Product, error)) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := get(r.Context(), strings.TrimPrefix(r.URL.Path, "/"))
		switch {
		case errors.Is(err, product.ErrNotFound):
			http.NotFound(w, r)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(p)
		}
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// TestStaleWhenSourceDown: the real getProduct bootstrap, its product source a real
// HTTP service. The service is shut down (connections refused) and the product's TTL
// passes: inside the stale-if-error window the function answers 200 STALE with the
// stored product and Warning 111, logs the source's failure, and asks the source again
// only when its backoff ends; a product that was never cached gets the source's error.
func TestStaleWhenSourceDown(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	src := productServer(t)
	const ttl = 300 * time.Millisecond
	s := newStack(t, "redis://"+srv.Addr(),
		"PRODUCT_SOURCE_URL", src.URL, "PRODUCT_SOURCE_TIMEOUT", "500ms",
		"PRODUCT_CACHE_TTL", ttl.String(), "CACHE_TTL_JITTER", "0",
		"CACHE_STALE_WHILE_REVALIDATE", "0s", "CACHE_STALE_IF_ERROR", "1h",
		"CACHE_EARLY_REFRESH", "0", "CACHE_REFRESH_BACKOFF", "1h")
	gp := s.start("getproduct")

	const id = "prod-0007"
	first := gp.invoke(productEvent(t, v2, id))
	wantProduct(t, first, id, "MISS")
	src.Close()
	time.Sleep(3 * ttl)

	for i := range 3 {
		r := gp.invoke(productEvent(t, v2, id))
		if r.Status != 200 || r.cache() != "STALE" || r.Body != first.Body {
			t.Fatalf("read %d with the source down, past the TTL: %d X-Cache %q: %.200s", i, r.Status, r.cache(), r.Body)
		}
		if w := r.Header.Get("Warning"); w != `111 - "Revalidation Failed"` {
			t.Fatalf("read %d: Warning %q, want 111 Revalidation Failed", i, w)
		}
	}
	// The first read past the TTL asked the source and failed; the backoff (1 h here)
	// kept the next two from asking.
	log := gp.allOutput()
	if n := strings.Count(log, `"sourceError":"`); n != 3 {
		t.Fatalf("%d request lines with a sourceError, want 3: %s", n, log)
	}
	if n := strings.Count(log, `"refresh":"stale"`); n != 1 {
		t.Fatalf("%d refreshes tried, want 1 (then the backoff): %s", n, log)
	}
	if !strings.Contains(log, "backing off") {
		t.Fatalf("the reads inside the backoff do not say so: %s", log)
	}
	if r := gp.invoke(productEvent(t, v2, "prod-0008")); r.Status < 500 || r.cache() != "MISS" {
		t.Fatalf("a product never cached, source down: %d X-Cache %q; want the source's 5xx", r.Status, r.cache())
	}
}
