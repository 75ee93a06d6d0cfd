// Package api holds the store API's HTTP handlers: getProduct, health and cacheClear.
// They are plain http.Handlers; the runtime adapter (package serve) runs them under
// AWS Lambda or as an HTTP server, and package telemetry writes their log line.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/tally"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// ProductKeys is the key namespace of cached products. Bump the version whenever the
// JSON shape of product.Product or the cache's entry format changes: a deploy then
// never serves old entries. v2: entries carry the header of stale-while-revalidate.
var ProductKeys = cache.Versioned("product", 2)

// TallyKey returns the key of the hash that holds the application's getProduct
// outcome counts (see package tally) beside the cache key prefix: the prefix with its
// final ':' replaced by '#', then "stats:getproduct" ("store:dev:" gives
// "store:dev#stats:getproduct"). The figures are not cache entries: the key is not
// under the prefix, so no form of cacheClear removes it. Nor is it under any other
// stage's prefix but a parent of this one, which config's rule (a prefix's last
// segment is its stage) keeps apart: a prefix ends with ":<stage>:" and a stage has
// no '#'. It is one key, so cluster mode serves it as any other.
func TallyKey(prefix string) string {
	return strings.TrimSuffix(prefix, ":") + "#stats:getproduct"
}

// API is the functions' shared parts; each method returns one function's handler.
type API struct {
	Config config.Config
	Cache  *cache.Service
	// Redis is the client holder the Cache uses; health pings it directly, past the
	// breaker, to report what Redis says now.
	Redis   cache.Conn
	Source  product.Source
	Tally   *tally.Tally
	Version string
	// Embedded marks a local run against the embedded in-memory Redis; health says so.
	Embedded bool
	// OpenClear lets cacheClear run without a token when none is configured. Only the
	// local run sets it: a deployed utility open to anyone is a hole.
	OpenClear bool
	// RequestID finds a request's id for error bodies (serve.RequestID). nil: none.
	RequestID func(context.Context) string
}

// GetProduct is the getProduct function's handler: GET /products/{id}.
func (a *API) GetProduct() http.Handler {
	return a.mux(route{"GET /products/{id}", a.products(), false})
}

// Health is the health function's handler: GET /health.
func (a *API) Health() http.Handler {
	return a.mux(route{"GET /health", a.health(), false})
}

// CacheClear is the cacheClear function's handler: POST /cache/clear. It is not for
// browsers: it answers no CORS preflight and sends no CORS headers.
func (a *API) CacheClear() http.Handler {
	return a.mux(route{"POST /cache/clear", a.clearer(), true})
}

// All serves every route, for the local run and the all-in-one container.
func (a *API) All() http.Handler {
	return a.mux(
		route{"GET /products/{id}", a.products(), false},
		route{"GET /health", a.health(), false},
		route{"POST /cache/clear", a.clearer(), true},
	)
}

type route struct {
	pattern string
	h       http.Handler
	// noCORS keeps browsers of other origins out of the route: no preflight answer
	// and no CORS headers on its responses.
	noCORS bool
}

// mux routes the given patterns; any other path is a JSON 404, and another method on
// a known path a JSON 405 with Allow. A path with dot segments or doubled slashes is a
// JSON 404 too: http.ServeMux would answer it with a redirect to the cleaned path and
// an HTML body that repeats it. CORS wraps it all, preflights included, except the
// paths of noCORS routes.
func (a *API) mux(routes ...route) http.Handler {
	m := http.NewServeMux()
	var private []string
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		pattern := rt.pattern
		h := rt.h
		m.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			telemetry.FromContext(r.Context()).SetRoute(pattern)
			h.ServeHTTP(w, r)
		}))
		allow := method + ", OPTIONS"
		if rt.noCORS {
			private = append(private, path)
			allow = method
		}
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			a.writeError(w, r, fault.New(fault.MethodNotAllowed, "method not allowed"))
		})
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, fault.New(fault.NoRoute, "no such route"))
	})
	return cors(a.Config.HTTP.CORSOrigins, private, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && cleanPath(p) != p {
			a.writeError(w, r, fault.New(fault.NoRoute, "no such route"))
			return
		}
		m.ServeHTTP(w, r)
	}))
}

// cleanPath is the path http.ServeMux routes an escaped path by (it redirects when the
// two differ): path.Clean, rooted, with a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// writeError answers with err's JSON error body (fault.Write, the only error writer)
// and records its code on the request's log line. err's message is a fixed text:
// whatever detail the log needs is added to the line before, never to the body.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err *fault.Error) {
	telemetry.FromContext(r.Context()).SetError(string(err.Code))
	var id string
	if a.RequestID != nil {
		id = a.RequestID(r.Context())
	}
	fault.Write(w, id, err)
}

// writeJSON answers a successful (or health) body. Should v not encode, which this
// package's bodies always do, the answer is fault's internal error, whose body does
// not repeat the encoder's error.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fault.Write(w, "", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType+"; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// bearer reports whether r carries "Authorization: Bearer <token>", compared in
// constant time. An empty token never matches.
func bearer(r *http.Request, token config.Secret) bool {
	if token == "" {
		return false
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	// The scheme is case-insensitive (RFC 7235).
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
