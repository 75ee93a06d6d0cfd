package api

import (
	"log/slog"
	"net/http"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// tierValues are the X-Cache-Tier header values, one slice per tier, each capped so
// that an append by anyone copies it: a hit sets the header without an allocation.
var tierValues = map[cache.Tier][]string{
	cache.TierL1: []string{"L1"}[:1:1],
	cache.TierL2: []string{"L2"}[:1:1],
}

// tier says which tier served a hit: the X-Cache-Tier header, and "cacheTier" in the
// request line.
func (a *API) tier(w http.ResponseWriter, rec *telemetry.Record, t cache.Tier) {
	w.Header()["X-Cache-Tier"] = tierValues[t]
	rec.Add(slog.String("cacheTier", t.String()))
}

// l1Check is health's view of the in-process tier of this environment: on or off
// (and why), its entries, bytes, hits and the invalidations it applied.
func (a *API) l1Check(now string) (check, bool) {
	if a.Cache == nil || a.Cache.L1() == nil {
		return check{}, false
	}
	s := a.Cache.L1().Stats()
	c := check{ComponentType: "component", ObservedValue: s.Entries, ObservedUnit: "entries", Status: pass, Time: now,
		Details: map[string]any{
			"scope": "this environment", "on": s.On, "bytes": s.Bytes, "hits": s.Hits, "misses": s.Misses,
			"invalidations": s.Invalidations, "flushes": s.Flushes, "droppedWithConnection": s.ConnEvictions,
			"barriers": s.Barriers, "barrierFailures": s.BarrierFails, "refused": s.Refused,
			"maxStalenessMs": ms(a.Cache.L1().Bound()),
		}}
	if !s.On {
		c.Output = "L2 (Redis) only: " + s.Off
		c.Details["maxStalenessMs"] = nil
	}
	return c, true
}
