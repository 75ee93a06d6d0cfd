package api_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/logbuf"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/alicebob/miniredis/v2"
)

// gatedSource holds each product read until the test lets it go.
type gatedSource struct {
	product.Source
	entered, release chan struct{}
}

func (s gatedSource) Product(ctx context.Context, id string) (product.Product, error) {
	p, err := s.Source.Product(ctx, id)
	s.entered <- struct{}{}
	<-s.release
	return p, err
}

// TestGetProductFenceLost: a product invalidated while its fill fetched is served to
// the request that fetched it (it asked first), stored nowhere, and the request line
// says so.
func TestGetProductFenceLost(t *testing.T) {
	mr := miniredis.RunT(t)
	cat, err := product.NewCatalog(0)
	if err != nil {
		t.Fatal(err)
	}
	src := gatedSource{Source: cat, entered: make(chan struct{}), release: make(chan struct{})}
	a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + mr.Addr()}, config.ModeLambda, app.WithSource(src))
	var log logbuf.Buffer
	h := app.Handler(app.GetProduct, a, telemetry.NewLogger(&log, a.Config.LogLevel))

	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/products/prod-0001", nil))
		done <- w
	}()
	<-src.entered
	key := a.Cache.Key("product:v2:prod-0001")
	if _, err := a.Cache.Del(context.Background(), "product:v2:prod-0001"); err != nil {
		t.Fatal(err)
	}
	close(src.release)
	w := <-done
	if w.Code != 200 || w.Header().Get("X-Cache") != "MISS" || !strings.Contains(w.Body.String(), `"id":"prod-0001"`) {
		t.Fatalf("= %d %s %s", w.Code, w.Header().Get("X-Cache"), w.Body.String())
	}
	if mr.Exists(key) {
		v, _ := mr.Get(key)
		t.Fatalf("%s holds %.40q after an invalidation during its fill", key, v)
	}
	if line := log.String(); !strings.Contains(line, `"fenceLost":true`) {
		t.Fatalf("request line does not say the fence was lost: %s", line)
	}
}
