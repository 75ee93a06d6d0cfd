package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/cespare/xxhash/v2"
)

// products serves GET /products/{id}: cache-aside through GetOrSetRawJSON, the stored
// JSON served as it is (after a wholeness check), never decoded and re-encoded.
func (a *API) products() http.Handler {
	ttl := a.Config.Cache.ProductTTL
	cacheControl := a.Config.Cache.CacheControl
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := telemetry.FromContext(r.Context())
		id, err := product.ParseID(r.PathValue("id"))
		if err != nil {
			writeError(w, r, errInvalid, "invalid product id: use 1 to 64 letters, digits, '-' or '_'")
			return
		}
		key := ProductKeys.Key(id)
		body, res, err := cache.GetOrSetRawJSON(r.Context(), a.Cache, key, ttl, func(ctx context.Context) (product.Product, error) {
			p, err := a.Source.Product(ctx, id)
			if errors.Is(err, product.ErrNotFound) {
				return p, fmt.Errorf("%w: %w", cache.ErrNotFound, err)
			}
			return p, err
		})
		rec.SetCache(res.Outcome.String(), key, res.Redis, res.Fetch)
		if res.Cause != "" {
			rec.SetCause(string(res.Cause))
			rec.Add(slog.String("redisError", res.Err.Error()))
		}
		if res.StoreErr != nil {
			rec.Add(slog.String("storeError", string(cache.CauseOf(res.StoreErr))), slog.String("storeErrorDetail", res.StoreErr.Error()))
		}
		if res.Outcome != 0 {
			w.Header().Set("X-Cache", res.Outcome.String())
		}
		if a.Tally != nil {
			a.Tally.Record(r.Context(), res.Outcome)
		}
		if err != nil {
			a.productError(w, r, err)
			return
		}
		etag := `"` + strconv.FormatUint(xxhash.Sum64String(body), 36) + `"`
		h := w.Header()
		h.Set("ETag", etag)
		h.Set("Cache-Control", cacheControl)
		// api-proxy splits a v2 event's comma-separated header into several values.
		if matchETag(strings.Join(r.Header.Values("If-None-Match"), ","), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, body)
	})
}

func (a *API) productError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, cache.ErrNotFound), errors.Is(err, product.ErrNotFound):
		writeError(w, r, errNotFound, "no product with this id")
	case errors.Is(err, product.ErrInvalidID):
		writeError(w, r, errInvalid, "invalid product id")
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		telemetry.FromContext(r.Context()).Add(slog.String("sourceError", err.Error()))
		writeError(w, r, errTimeout, "the product source did not answer in time")
	default:
		telemetry.FromContext(r.Context()).Add(slog.String("sourceError", err.Error()))
		writeError(w, r, errUpstream, "the product source failed")
	}
}

// matchETag reports whether an If-None-Match header lists etag (weak or strong) or "*".
func matchETag(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}
