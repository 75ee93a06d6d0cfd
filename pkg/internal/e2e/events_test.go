package e2e

import (
	"encoding/json"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/internal/redistest"
)

// The sample events under events/ are the base of every event the suite sends: the
// tests change only the id, the Authorization header and the body, so the rest is what
// API Gateway sends (and what `sam local invoke` uses).

// apiVersion is the event shape: v1 (REST API proxy) or v2 (HTTP API payload 2.0).
type apiVersion int

const (
	v1 apiVersion = 1
	v2 apiVersion = 2
)

func (v apiVersion) String() string { return "v" + string(rune('0'+v)) }

// sampleEvent reads events/<name> as a JSON object.
func sampleEvent(tb testing.TB, name string) map[string]any {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root(tb), "events", name))
	if err != nil {
		tb.Fatalf("sample event: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("sample event %s: %v", name, err)
	}
	return m
}

func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	return m
}

func encode(tb testing.TB, m map[string]any) []byte {
	tb.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// productEvent is GET /products/{id} in shape v, built from events/getproduct.vN.json.
func productEvent(tb testing.TB, v apiVersion, id string) []byte {
	tb.Helper()
	path := "/products/" + url.PathEscape(id)
	if v == v2 {
		ev := sampleEvent(tb, "getproduct.v2.json")
		ev["rawPath"] = path
		obj(ev, "requestContext", "http")["path"] = path
		ev["pathParameters"] = map[string]any{"id": id}
		return encode(tb, ev)
	}
	ev := sampleEvent(tb, "getproduct.v1.json")
	ev["path"] = path
	obj(ev, "requestContext")["path"] = "/dev" + path
	ev["pathParameters"] = map[string]any{"id": id}
	return encode(tb, ev)
}

// healthEvent is GET /health in shape v, with a bearer token when token is set.
func healthEvent(tb testing.TB, v apiVersion, token string) []byte {
	tb.Helper()
	ev := sampleEvent(tb, "health."+v.String()+".json")
	setAuth(ev, v, token)
	return encode(tb, ev)
}

// clearEvent is POST /cache/clear in shape v with the given token (none when empty)
// and body.
func clearEvent(tb testing.TB, v apiVersion, token, body string) []byte {
	tb.Helper()
	ev := sampleEvent(tb, "cacheclear."+v.String()+".json")
	setAuth(ev, v, token)
	ev["body"] = body
	ev["isBase64Encoded"] = false
	for _, hk := range []string{"headers", "multiValueHeaders"} {
		for k := range obj(ev, hk) {
			if strings.EqualFold(k, "content-length") {
				delete(obj(ev, hk), k)
			}
		}
	}
	return encode(tb, ev)
}

// setAuth replaces the event's Authorization header with "Bearer token", or removes it
// when token is empty.
func setAuth(ev map[string]any, v apiVersion, token string) {
	for _, hk := range []string{"headers", "multiValueHeaders"} {
		h, ok := ev[hk].(map[string]any)
		if !ok {
			continue
		}
		for k := range h {
			if strings.EqualFold(k, "authorization") {
				delete(h, k)
			}
		}
	}
	if token == "" {
		return
	}
	if v == v2 {
		obj(ev, "headers")["authorization"] = "Bearer " + token
		return
	}
	obj(ev, "headers")["Authorization"] = "Bearer " + token
	obj(ev, "multiValueHeaders")["Authorization"] = []any{"Bearer " + token}
}

// TestSampleEvents replays every event under events/ through the function it is for,
// with Redis up and then down, and checks the statuses events/expected.json gives.
// The functions get the settings of events/env.json that the events depend on (the
// cacheClear token).
func TestSampleEvents(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(root(t), "events", "expected.json"))
	if err != nil {
		t.Fatalf("events/expected.json: %v", err)
	}
	var expected map[string]struct {
		Function           string `json:"function"`
		Status             int    `json:"status"`
		StatusWithoutRedis int    `json:"statusWithoutRedis"`
	}
	if err := json.Unmarshal(b, &expected); err != nil {
		t.Fatalf("events/expected.json: %v", err)
	}
	var envJSON map[string]map[string]string
	b, err = os.ReadFile(filepath.Join(root(t), "events", "env.json"))
	if err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	if err := json.Unmarshal(b, &envJSON); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	srv := redistest.Start(t)
	s := newStack(t, "redis://"+srv.Addr(), "CACHE_CLEAR_TOKEN", envJSON["CacheClearFunction"]["CACHE_CLEAR_TOKEN"])
	fns := map[string]*function{
		"GetProductFunction": s.start("getproduct"),
		"HealthFunction":     s.start("health"),
		"CacheClearFunction": s.start("cacheclear"),
	}
	names := slices.Sorted(maps.Keys(expected))
	replay := func(up bool) {
		t.Helper()
		for _, name := range names {
			e := expected[name]
			f := fns[e.Function]
			if f == nil {
				t.Fatalf("%s: unknown function %q", name, e.Function)
			}
			ev, err := os.ReadFile(filepath.Join(root(t), "events", name))
			if err != nil {
				t.Fatal(err)
			}
			r := f.invoke(ev)
			want := e.Status
			if !up {
				want = e.StatusWithoutRedis
			}
			if r.Status != want {
				t.Errorf("%s (Redis up: %v): %d, want %d: %.300s", name, up, r.Status, want, r.Body)
			}
			if strings.HasPrefix(name, "getproduct") && r.Status == 200 {
				if c := r.cache(); (up && c != "MISS" && c != "HIT") || (!up && c != "BYPASS") {
					t.Errorf("%s (Redis up: %v): X-Cache %q", name, up, c)
				}
			}
		}
	}
	replay(true)
	srv.Stop()
	replay(false)
}
