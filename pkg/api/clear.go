package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/redis/go-redis/v9"
)

// Limits of a clear request.
const (
	maxClearBody    = 64 << 10
	maxClearIDs     = 1000
	maxPatternLen   = 200
	clearBatch      = 500
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

// clearer serves POST /cache/clear: SCAN + UNLINK in batches under the key prefix (on
// every master in cluster mode), never FLUSHDB or FLUSHALL.
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
		prefix := a.Cache.Prefix()
		resp := ClearResponse{Scope: req.Scope}
		client := a.Redis.Client()
		switch {
		case req.IDs != nil:
			resp.Scope, resp.IDs = "ids", len(req.IDs)
			keys := make([]string, len(req.IDs))
			for i, id := range req.IDs {
				keys[i] = prefix + ProductKeys.Key(id)
			}
			resp.Deleted, err = unlink(ctx, client, keys)
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
			resp.Match = prefix + pattern
			resp.Deleted, err = clearMatch(ctx, client, resp.Match)
		}
		resp.DurationMs = ms(time.Since(start))
		rec.Add(slog.Int64("deleted", resp.Deleted), slog.String("scope", resp.Scope))
		if err != nil {
			cause := fault.Classify(err)
			rec.SetCause(string(cause))
			rec.Add(slog.String("redisError", err.Error()))
			a.writeError(w, r, &fault.Error{Code: fault.RedisUnavailable, Message: "Redis is unavailable: " + cause.Message(), Cause: cause})
			return
		}
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

// clearMatch removes every key matching match, scanning each master in cluster mode.
func clearMatch(ctx context.Context, client redis.UniversalClient, match string) (int64, error) {
	var total atomic.Int64
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, match, clearBatch).Result()
			if err != nil {
				return err
			}
			n, err := unlink(ctx, c, keys)
			total.Add(n)
			if err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
		return total.Load(), err
	}
	err := scan(ctx, client)
	return total.Load(), err
}

// unlink removes keys with one UNLINK each, pipelined: keys may hash to different
// cluster slots, where a multi-key UNLINK would fail with CROSSSLOT.
func unlink(ctx context.Context, c redis.UniversalClient, keys []string) (int64, error) {
	var n int64
	for len(keys) > 0 {
		batch := keys[:min(len(keys), clearBatch)]
		keys = keys[len(batch):]
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range batch {
				p.Unlink(ctx, k)
			}
			return nil
		})
		for _, cmd := range cmds {
			n += cmd.(*redis.IntCmd).Val()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
