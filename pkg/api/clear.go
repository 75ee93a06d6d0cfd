package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// Limits of a clear request.
const (
	maxClearBody  = 64 << 10
	maxClearIDs   = 1000
	maxPatternLen = 200
	// clearTimeLimit bounds a clear whose request has no nearer deadline.
	clearTimeLimit = 25 * time.Second
	// clearMargin is kept from the request's deadline to answer a clear that ran out
	// of time; at most a quarter of the time left.
	clearMargin     = 100 * time.Millisecond
	scopeAll        = "all"
	scopeProducts   = "products"
	productsPattern = "product:*"
)

// ClearRequest is the JSON body of POST /cache/clear. It holds exactly one selector:
// a body with none (empty, null, {}), with an empty or null one, with two, or with
// any other field is refused, so that a script with an unset variable never clears
// everything. Field names are matched exactly ("IDS" is not "ids").
type ClearRequest struct {
	// Scope is "all" (every key under the prefix) or "products" (every cached product,
	// of every schema version).
	Scope string `json:"scope,omitempty"`
	// Pattern is a glob (letters, digits, ':', '_', '-', '*', '?') matched under the
	// prefix: "product:v2:prod-00*".
	Pattern string `json:"pattern,omitempty"`
	// IDs are 1 to 1000 product ids whose cached entries to remove.
	IDs []string `json:"ids,omitempty"`
}

// ClearResponse is cacheClear's answer. Complete is false when the clear ran out of
// time: Deleted keys were removed, the rest are still there, and the same request
// again continues (a new scan finds only what is left).
type ClearResponse struct {
	Deleted    int64   `json:"deleted"`
	Complete   bool    `json:"complete"`
	Scope      string  `json:"scope"`
	Match      string  `json:"match,omitempty"`
	IDs        int     `json:"ids,omitempty"`
	DurationMs float64 `json:"durationMs"`
	Message    string  `json:"message,omitempty"`
}

// clearForms ends every refusal of a clear body: what the caller may send.
const clearForms = `send exactly one of {"ids":["prod-0001",...]} (1 to 1000 product ids), ` +
	`{"pattern":"<glob under the key prefix>"}, {"scope":"products"} or {"scope":"all"}`

// clearError is why ParseClearRequest refused a body: a fixed text that never
// repeats the input, followed by the accepted forms.
type clearError string

func (e clearError) Error() string { return "bad clear request: " + string(e) + "; " + clearForms }

const (
	errNoBody       clearError = "the body is empty"
	errNotObject    clearError = "the body is not one JSON object"
	errNoSelector   clearError = "no selector"
	errSelectors    clearError = "more than one selector"
	errUnknownField clearError = "unknown field (field names are lower case)"
	errEmptyValue   clearError = "the selector is empty or null"
	errScope        clearError = `scope is neither "products" nor "all"`
	errPattern      clearError = "the pattern is not a glob of letters, digits, ':', '_', '-', '*' and '?' of at most 200 bytes"
	errIDs          clearError = "ids is not a list of 1 to 1000 product ids (letters, digits, '-' and '_')"
)

// ParseClearRequest reads and checks a clear request body: one JSON object with
// exactly one of the fields "ids", "pattern" and "scope", spelled so, with a
// non-empty value. Whatever it accepts stays under the key prefix: patterns are
// matched after the prefix and may not contain escapes or character classes, ids
// must be product ids. Its error's text is fixed and names the accepted forms.
func ParseClearRequest(body []byte) (ClearRequest, error) {
	var req ClearRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, errNoBody
	}
	// Token by token rather than into the struct: encoding/json matches field names
	// case-insensitively, keeps the last of duplicate fields and turns null into "".
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return req, errNotObject
	}
	var name string
	var value json.RawMessage
	fields := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return req, errNotObject
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return req, errNotObject
		}
		if key != "ids" && key != "pattern" && key != "scope" {
			return req, errUnknownField
		}
		fields++
		name, value = key, raw
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return req, errNotObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, errNotObject
	}
	switch {
	case fields == 0:
		return req, errNoSelector
	case fields > 1:
		return req, errSelectors
	case string(value) == "null":
		return req, errEmptyValue
	}
	switch name {
	case "scope":
		if err := json.Unmarshal(value, &req.Scope); err != nil {
			return ClearRequest{}, errScope
		}
		switch req.Scope {
		case "":
			return ClearRequest{}, errEmptyValue
		case scopeAll, scopeProducts:
		default:
			return ClearRequest{}, errScope
		}
	case "pattern":
		if err := json.Unmarshal(value, &req.Pattern); err != nil {
			return ClearRequest{}, errPattern
		}
		if req.Pattern == "" {
			return ClearRequest{}, errEmptyValue
		}
		if !validPattern(req.Pattern) {
			return ClearRequest{}, errPattern
		}
	case "ids":
		// A null element becomes "", which no product id is.
		if err := json.Unmarshal(value, &req.IDs); err != nil || len(req.IDs) == 0 || len(req.IDs) > maxClearIDs {
			return ClearRequest{}, errIDs
		}
		for _, id := range req.IDs {
			if _, err := product.ParseID(id); err != nil {
				return ClearRequest{}, errIDs
			}
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
//
// The checks come in this order, each before anything is read: disabled in prod (one
// answer whatever the token, so the endpoint confirms no guess), no token configured,
// the token, then the body's type (JSON only: a cross-origin text/plain POST needs
// no preflight), its size and its selector. The clear runs until the request's
// deadline less a margin; one that runs out of time answers what it removed so far
// with "complete": false, and only a Redis that fails is a 503.
func (a *API) clearer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := telemetry.FromContext(r.Context())
		token := a.Config.CacheClearToken
		switch {
		case a.Config.Stage == config.StageProd && !a.Config.CacheClearEnabled:
			a.writeError(w, r, fault.New(fault.Forbidden, "cacheClear is disabled in the prod stage (set CACHE_CLEAR_ENABLED=true to allow it)"))
			return
		case token == "" && !a.OpenClear:
			a.writeError(w, r, fault.New(fault.Forbidden, "cacheClear is disabled: no CACHE_CLEAR_TOKEN is configured"))
			return
		case token == "" && !fromLoopback(r):
			a.writeError(w, r, fault.New(fault.Forbidden, "cacheClear without a token answers only on loopback, at http://localhost or http://127.0.0.1: set CACHE_CLEAR_TOKEN to call it otherwise"))
			return
		case token != "" && !bearer(r, token):
			w.Header().Set("WWW-Authenticate", `Bearer realm="cacheClear"`)
			a.writeError(w, r, fault.New(fault.Unauthorized, "missing or wrong bearer token"))
			return
		}
		if !jsonType(r.Header.Get("Content-Type")) {
			w.Header().Set("Accept-Post", "application/json")
			a.writeError(w, r, fault.New(fault.UnsupportedMediaType, "cacheClear takes only Content-Type: application/json"))
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
			// The error's text is fixed (clearError): it never repeats the body.
			a.writeError(w, r, fault.New(fault.Invalid, err.Error()))
			return
		}
		ctx, cancel := clearContext(r.Context())
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
		resp.Complete = err == nil
		if err != nil {
			rec.Add(slog.String("redisError", err.Error()))
			cause := cache.CauseOf(err)
			if cause != fault.CauseCanceled {
				rec.Add(slog.Int64("deleted", resp.Deleted), slog.String("scope", resp.Scope))
				rec.SetCause(string(cause))
				a.writeError(w, r, &fault.Error{Code: fault.RedisUnavailable, Message: "Redis is unavailable: " + cause.Message(), Cause: cause})
				return
			}
			// The clear's time ran out (or the caller left) while Redis answered: what
			// was removed stays removed, and the same request again goes on.
			resp.Message = "time ran out before the clear finished: the keys counted in deleted are gone; send the same request again to remove the rest"
		}
		rec.Add(slog.Int64("deleted", resp.Deleted), slog.String("scope", resp.Scope), slog.Bool("complete", resp.Complete))
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

// clearContext bounds a clear by the request's deadline (under Lambda the
// invocation's, less serve's margin) less clearMargin, to answer in, and by
// clearTimeLimit.
func clearContext(ctx context.Context) (context.Context, context.CancelFunc) {
	end := time.Now().Add(clearTimeLimit)
	if d, ok := ctx.Deadline(); ok {
		margin := max(min(clearMargin, time.Until(d)/4), 0)
		if e := d.Add(-margin); e.Before(end) {
			end = e
		}
	}
	return context.WithDeadline(ctx, end)
}

// jsonType reports whether a Content-Type header is application/json, in UTF-8 if
// it names a charset.
func jsonType(header string) bool {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// fromLoopback reports whether r came over loopback for a loopback host name. The
// host name matters: a web page that rebinds its own name to 127.0.0.1 reaches a
// loopback listener as same-origin, but sends its own name as Host.
func fromLoopback(r *http.Request) bool {
	return loopbackHost(r.RemoteAddr, true) && loopbackHost(r.Host, false)
}

// loopbackHost reports whether hostport (a host with or without a port) is a loopback
// IP address or, unless ipOnly, the name localhost.
func loopbackHost(hostport string, ipOnly bool) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !ipOnly && strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
