package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unsafe"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/fault"
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
			a.writeError(w, r, fault.New(fault.Invalid, "invalid product id: use 1 to 64 letters, digits, '-' or '_'"))
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
		if res.FenceLost {
			// An invalidation came while this fill fetched: its value was served to
			// this request only and not stored.
			rec.Add(slog.Bool("fenceLost", true))
		}
		if res.Shared {
			rec.Add(slog.Bool("sharedFill", true))
		}
		switch {
		case res.Refreshed && res.Early:
			rec.Add(slog.String("refresh", "early"))
		case res.Refreshed:
			rec.Add(slog.String("refresh", "stale"))
		case res.RefreshStarted:
			rec.Add(slog.String("refresh", "background"))
		}
		if res.SourceErr != nil {
			// Served from Redis over a failed (or backing-off) refresh: the
			// source's failure is logged, the reader gets the stored product.
			rec.Add(slog.String("sourceError", res.SourceErr.Error()))
		}
		if res.Outcome != 0 {
			w.Header().Set("X-Cache", res.Outcome.String())
		}
		if res.Outcome == cache.Stale {
			rec.Add(slog.Int64("staleForMs", res.StaleFor.Milliseconds()))
			// RFC 9111 dropped Warning, but clients and CDNs still read it; it
			// says which kind of stale this is.
			if res.SourceErr != nil {
				w.Header()["Warning"] = warnRevalidationFailed
			} else {
				w.Header()["Warning"] = warnStale
			}
		}
		if res.Outcome == cache.Hit && res.Tier != 0 {
			a.tier(w, rec, res.Tier)
		}
		if a.Tally != nil {
			a.Tally.Record(r.Context(), res.Outcome)
		}
		if err != nil {
			a.productError(w, r, err)
			return
		}
		var tag [16]byte
		etag := string(append(strconv.AppendUint(append(tag[:0], '"'), xxhash.Sum64String(body), 36), '"'))
		// The hit path's headers share one allocation (Header.Set makes one per value);
		// each value is its own capped slice, so appending to one copies it.
		vals := [...]string{etag, cacheControl, jsonContentType, strconv.Itoa(len(body))}
		h := w.Header()
		h["Etag"] = vals[0:1:1]
		h["Cache-Control"] = vals[1:2:2]
		// api-proxy splits a v2 event's comma-separated header into several values.
		if matchETag(strings.Join(r.Header.Values("If-None-Match"), ","), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h["Content-Type"] = vals[2:3:3]
		h["Content-Length"] = vals[3:4:4]
		w.WriteHeader(http.StatusOK)
		// The stored bytes are written as they are, without copying the ~1 KB string
		// to a new slice (io.WriteString would): Write must not modify its argument.
		_, _ = w.Write(unsafe.Slice(unsafe.StringData(body), len(body)))
	})
}

const jsonContentType = "application/json; charset=utf-8"

// The Warning values of a STALE answer (RFC 7234, 5.5): inside the
// stale-while-revalidate window, and over a refresh that failed (stale-if-error).
var (
	warnStale              = []string{`110 - "Response is Stale"`}
	warnRevalidationFailed = []string{`111 - "Revalidation Failed"`}
)

func (a *API) productError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, cache.ErrNotFound), errors.Is(err, product.ErrNotFound):
		a.writeError(w, r, fault.New(fault.NotFound, "no product with this id"))
	case errors.Is(err, product.ErrInvalidID):
		a.writeError(w, r, fault.New(fault.Invalid, "invalid product id"))
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		telemetry.FromContext(r.Context()).Add(slog.String("sourceError", err.Error()))
		a.writeError(w, r, fault.New(fault.Timeout, "the product source did not answer in time"))
	default:
		telemetry.FromContext(r.Context()).Add(slog.String("sourceError", err.Error()))
		a.writeError(w, r, fault.New(fault.SourceUnavailable, "the product source failed"))
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
