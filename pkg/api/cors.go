package api

import (
	"net/http"
	"slices"
)

// cors answers preflights and marks responses for browser callers from origins (or
// any origin with "*"). A storefront calls getProduct from the browser. Requests for
// the private paths pass through untouched: a preflight for one is routed like any
// other request (and refused), and no response on one allows another origin.
func cors(origins, private []string, next http.Handler) http.Handler {
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The path ServeMux routes by, unescaped: a request routed to a private
		// route always has its path here.
		if slices.Contains(private, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		origin := r.Header.Get("Origin")
		allowed := origin != "" && (any || slices.Contains(origins, origin))
		h := w.Header()
		if allowed {
			// Both values in one allocation (Header.Set makes one per value); each is
			// its own capped slice, so appending to one copies it.
			vals := [...]string{"*", exposeHeaders}
			if !any {
				vals[0] = origin
				h.Add("Vary", "Origin")
			}
			h["Access-Control-Allow-Origin"] = vals[0:1:1]
			h["Access-Control-Expose-Headers"] = vals[1:2:2]
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed {
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-None-Match")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

const exposeHeaders = "ETag, X-Cache, X-Cache-Tier, X-Request-Id"
