package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/internal/apptest"
	"github.com/acmestore/storeapi/pkg/internal/logbuf"
	"github.com/acmestore/storeapi/pkg/internal/redistest"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// TestGetProductTier: with the in-process tier on, a product read again is a HIT
// from L1, and the X-Cache-Tier header, the request line and health say so.
func TestGetProductTier(t *testing.T) {
	srv := redistest.Start(t)
	a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr(), "CACHE_L1": "on"}, config.ModeHTTP)
	var log logbuf.Buffer
	h := app.Handler(app.GetProduct, a, telemetry.NewLogger(&log, a.Config.LogLevel))
	var tiers []string
	for range 4 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/products/prod-0001", nil))
		if w.Code != 200 {
			t.Fatalf("= %d %s", w.Code, w.Body.String())
		}
		tiers = append(tiers, w.Header().Get("X-Cache")+" "+w.Header().Get("X-Cache-Tier"))
	}
	// MISS (filled), HIT from Redis (which puts it in L1), then L1.
	if tiers[0] != "MISS " || tiers[1] != "HIT L2" || tiers[3] != "HIT L1" {
		t.Fatalf("X-Cache and X-Cache-Tier of four reads: %q, want MISS, HIT L2, ..., HIT L1", tiers)
	}
	if !strings.Contains(log.String(), `"cacheTier":"L1"`) {
		t.Errorf("no request line says cacheTier L1:\n%s", log.String())
	}

	w := httptest.NewRecorder()
	a.Health().ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
	var body struct {
		Checks map[string][]struct {
			ObservedValue float64        `json:"observedValue"`
			Details       map[string]any `json:"details"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	c, ok := body.Checks["cache:l1"]
	if !ok || c[0].ObservedValue < 1 || c[0].Details["on"] != true || c[0].Details["hits"].(float64) < 1 {
		t.Fatalf("health's cache:l1 = %+v, want on with an entry and hits\n%s", c, w.Body.String())
	}
}

// TestHealthSaysWhyL1IsOff: a tier that is off (here: CACHE_L1=off) is in health's
// details with the reason.
func TestHealthSaysWhyL1IsOff(t *testing.T) {
	srv := redistest.Start(t)
	a := apptest.Build(t, map[string]string{"REDIS_URL": "redis://" + srv.Addr(), "CACHE_L1": "off"}, config.ModeHTTP)
	w := httptest.NewRecorder()
	a.Health().ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
	if !strings.Contains(w.Body.String(), `"output":"L2 (Redis) only: CACHE_L1=off"`) {
		t.Fatalf("health does not say why L1 is off:\n%s", w.Body.String())
	}
}
