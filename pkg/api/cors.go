package api

import (
	"net/http"
	"slices"
)

// cors answers preflights and marks responses for browser callers from origins (or
// any origin with "*"). A storefront calls getProduct from the browser.
func cors(origins []string, next http.Handler) http.Handler {
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

const exposeHeaders = "ETag, X-Cache, X-Request-Id"
