package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// Limits of a clear request.
const (
	maxClearBody    = 64 << 10
	maxClearIDs     = 1000
	maxPatternLen   = 200
	clearTimeLimit  = 25 * time.Second
	scopeAll        = "all"
	scopeProducts   = "products"
	productsPattern = "product:*"
)

// ClearRequest is the optional JSON body of POST /cache/clear. At most one of its
// fields may be set; an empty body clears everything under the key prefix.
type ClearRequest struct {
	// Scope is "all" (every key under the prefix) or "products" (every cached product,
	// of every schema version).
	Scope string `json:"scope,omitempty"`
	// Pattern is a glob (letters, digits, ':', '_', '-', '*', '?') matched under the
	// prefix: "product:v1:prod-00*".
	Pattern string `json:"pattern,omitempty"`
	// IDs are product ids whose cached entries to remove.
	IDs []string `json:"ids,omitempty"`
}

// ClearResponse is cacheClear's answer.
type ClearResponse struct {
	Deleted    int64   `json:"deleted"`
	Scope      string  `json:"scope"`
	Match      string  `json:"match,omitempty"`
	IDs        int     `json:"ids,omitempty"`
	DurationMs float64 `json:"durationMs"`
}

var errBadScope = errors.New("bad scope")

// ParseClearRequest reads and checks a clear request body. Whatever it accepts stays
// under the key prefix: patterns are matched after the prefix and may not contain
// escapes or character classes, ids must be product ids.
func ParseClearRequest(body []byte) (ClearRequest, error) {
	var req ClearRequest
	if len(body) == 0 {
		req.Scope = scopeAll
		return req, nil
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, errBadScope
	}
	if dec.More() {
		return req, errBadScope
	}
	set := 0
	for _, ok := range []bool{req.Scope != "", req.Pattern != "", req.IDs != nil} {
		if ok {
			set++
		}
	}
	switch {
	case set > 1:
		return req, errBadScope
	case set == 0:
		req.Scope = scopeAll
	case req.Scope != "" && req.Scope != scopeAll && req.Scope != scopeProducts:
		return req, errBadScope
	case req.Pattern != "" && !validPattern(req.Pattern):
		return req, errBadScope
	case req.IDs != nil && (len(req.IDs) == 0 || len(req.IDs) > maxClearIDs):
		return req, errBadScope
	}
	for _, id := range req.IDs {
		if _, err := product.ParseID(id); err != nil {
			return req, errBadScope
		}
	}
	return req, nil
}

func validPattern(p string) bool {
	if len(p) > maxPatternLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(idByte(c) || c == ':' || c == '*' || c == '?') {
			return false
		}
	}
	return true
}

func idByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// clearer serves POST /cache/clear over the cache's own invalidations: Del for ids,
// Clear (SCAN + UNLINK under the key prefix) for a pattern or scope.
func (a *API) clearer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := telemetry.FromContext(r.Context())
		token := a.Config.CacheClearToken
		switch {
		case token == "" && !a.OpenClear:
			a.writeError(w, r, fault.New(fault.Forbidden, "cacheClear is disabled: no CACHE_CLEAR_TOKEN is configured"))
			return
		case token != "" && !bearer(r, token):
			w.Header().Set("WWW-Authenticate", `Bearer realm="cacheClear"`)
			a.writeError(w, r, fault.New(fault.Unauthorized, "missing or wrong bearer token"))
			return
		case a.Config.Stage == config.StageProd && !a.Config.CacheClearEnabled:
			a.writeError(w, r, fault.New(fault.Forbidden, "cacheClear is disabled in the prod stage (set CACHE_CLEAR_ENABLED=true to allow it)"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxClearBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				a.writeError(w, r, fault.New(fault.TooLarge, "request body larger than 64 KiB"))
				return
			}
			a.writeError(w, r, fault.New(fault.Invalid, "could not read the request body"))
			return
		}
		req, err := ParseClearRequest(body)
		if err != nil {
			a.writeError(w, r, fault.New(fault.Invalid, `bad clear request: send {"scope":"all"|"products"}, {"pattern":"<glob under the prefix>"} or {"ids":["prod-0001",...]}`))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), clearTimeLimit)
		defer cancel()
		start := time.Now()
		resp := ClearResponse{Scope: req.Scope}
		switch {
		case req.IDs != nil:
			resp.Scope, resp.IDs = "ids", len(req.IDs)
			keys := make([]string, len(req.IDs))
			for i, id := range req.IDs {
				keys[i] = ProductKeys.Key(id)
			}
			resp.Deleted, err = a.Cache.Del(ctx, keys...)
		default:
			pattern := req.Pattern
			switch {
			case pattern != "":
				resp.Scope = "pattern"
			case req.Scope == scopeProducts:
				pattern = productsPattern
			default:
				pattern = "*"
			}
			resp.Match = a.Cache.Key(pattern)
			resp.Deleted, err = a.Cache.Clear(ctx, pattern)
		}
		resp.DurationMs = ms(time.Since(start))
		rec.Add(slog.Int64("deleted", resp.Deleted), slog.String("scope", resp.Scope))
		if err != nil {
			cause := cache.CauseOf(err)
			rec.SetCause(string(cause))
			rec.Add(slog.String("redisError", err.Error()))
			a.writeError(w, r, &fault.Error{Code: fault.RedisUnavailable, Message: "Redis is unavailable: " + cause.Message(), Cause: cause})
			return
		}
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}
