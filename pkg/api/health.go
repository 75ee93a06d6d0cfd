package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/acmestore/storeapi/pkg/telemetry"
	"github.com/redis/go-redis/v9"
)

// embeddedFiguresNote is health's note, in the local run's details, where the embedded
// Redis gives no server figures.
const embeddedFiguresNote = "no memory, keyspace or server figures: the embedded Redis does not report them (set REDIS_URL to a real Redis for them)"

// healthBudget bounds the whole health answer, so a Redis that never answers still
// gets a reply well within API Gateway's and the function's timeouts.
const healthBudget = 1500 * time.Millisecond

// memoryWarn is the share of maxmemory above which redis:memory warns.
const memoryWarn = 0.9

// healthBody has the shape of the IETF draft "Health Check Response Format for HTTP
// APIs" (application/health+json).
type healthBody struct {
	Status      string             `json:"status"`
	Version     string             `json:"version,omitempty"`
	ServiceID   string             `json:"serviceId"`
	Description string             `json:"description,omitempty"`
	Output      string             `json:"output,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
	Checks      map[string][]check `json:"checks"`
}

type check struct {
	ComponentType string         `json:"componentType,omitempty"`
	ObservedValue any            `json:"observedValue,omitempty"`
	ObservedUnit  string         `json:"observedUnit,omitempty"`
	Status        string         `json:"status"`
	Cause         fault.Cause    `json:"cause,omitempty"`
	Output        string         `json:"output,omitempty"`
	Time          string         `json:"time,omitempty"`
	Details       map[string]any `json:"details,omitempty"`
}

const (
	pass = "pass"
	warn = "warn"
	fail = "fail"
)

func worse(a, b string) string {
	rank := map[string]int{pass: 0, warn: 1, fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// health serves GET /health. Anyone gets the short answer: status, whether Redis is
// reachable, and the classified cause of a failure. The details (server version,
// memory, keyspace, pool, application figures) need HEALTH_TOKEN, or the dev stage.
func (a *API) health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := telemetry.FromContext(r.Context())
		ctx, cancel := context.WithTimeout(r.Context(), healthBudget)
		defer cancel()
		details := a.Config.Stage == config.StageDev || bearer(r, a.Config.HealthToken)
		now := time.Now().UTC().Format(time.RFC3339)
		body := healthBody{Status: pass, Version: a.Version, ServiceID: "storeapi", Checks: map[string][]check{}}
		if details {
			body.Description = "store product API (" + string(a.Config.Stage) + ")"
		}
		if a.Embedded {
			body.Notes = append(body.Notes, "embedded in-memory Redis (local run): data is lost on exit")
		}

		client := a.Redis.Client()
		pingCtx, pingCancel := context.WithTimeout(ctx, a.Config.Redis.OpTimeout)
		start := time.Now()
		err := client.Ping(pingCtx).Err()
		rtt := time.Since(start)
		pingCancel()
		if err != nil {
			cause := fault.Classify(err)
			if cause == fault.CauseCanceled || cause == fault.CauseNone {
				cause = fault.CauseTimeout
			}
			rec.SetCause(string(cause))
			rec.Add(slog.String("redisError", err.Error()))
			body.Status = fail
			body.Output = cause.Message()
			body.Checks["redis"] = []check{{ComponentType: "datastore", Status: fail, Cause: cause, Output: cause.Message(), Time: now}}
			if details {
				body.Checks["redis:connections"] = []check{a.poolCheck(client, now)}
			}
			writeJSON(w, http.StatusServiceUnavailable, "application/health+json", body)
			return
		}
		body.Checks["redis"] = []check{{ComponentType: "datastore", Status: pass, Time: now}}
		if details {
			a.addDetails(ctx, client, &body, rtt, now)
		}
		for _, cs := range body.Checks {
			for _, c := range cs {
				body.Status = worse(body.Status, c.Status)
			}
		}
		writeJSON(w, http.StatusOK, "application/health+json", body)
	})
}

func (a *API) poolCheck(client redis.UniversalClient, now string) check {
	s := client.PoolStats()
	return check{
		ComponentType: "datastore", ObservedValue: s.TotalConns, ObservedUnit: "connections", Status: pass, Time: now,
		Details: map[string]any{
			"scope": "this environment", "idle": s.IdleConns, "stale": s.StaleConns,
			"hits": s.Hits, "misses": s.Misses, "timeouts": s.Timeouts, "poolSize": a.Config.Redis.PoolSize,
		},
	}
}

func (a *API) addDetails(ctx context.Context, client redis.UniversalClient, body *healthBody, rtt time.Duration, now string) {
	body.Checks["redis:responseTime"] = []check{{ComponentType: "datastore", ObservedValue: ms(rtt), ObservedUnit: "ms", Status: pass, Time: now}}
	body.Checks["redis:connections"] = []check{a.poolCheck(client, now)}

	info, err := serverInfo(ctx, client)
	switch {
	case err != nil && a.Embedded:
		// miniredis answers INFO with its clients section only: nothing is wrong.
		body.Notes = append(body.Notes, embeddedFiguresNote)
	case err != nil:
		body.Notes = append(body.Notes, "server figures unavailable: "+string(fault.Classify(err)))
	default:
		used, max := info.int("used_memory"), info.int("maxmemory")
		memStatus := pass
		if max > 0 && float64(used) >= memoryWarn*float64(max) {
			memStatus = warn
		}
		body.Checks["redis:memory"] = []check{{ComponentType: "datastore", ObservedValue: used, ObservedUnit: "bytes", Status: memStatus, Time: now,
			Details: map[string]any{"maxmemory": max, "policy": info.str("maxmemory_policy"), "human": info.str("used_memory_human")}}}
		body.Checks["redis:server"] = []check{{ComponentType: "datastore", Status: pass, Time: now, Details: map[string]any{
			"version": info.str("redis_version"), "role": info.str("role"), "mode": info.str("redis_mode"),
			"uptimeSeconds": info.int("uptime_in_seconds"), "connectedClients": info.int("connected_clients"), "nodes": info.nodes,
		}}}
		hits, misses := info.int("keyspace_hits"), info.int("keyspace_misses")
		ratio := 0.0
		if hits+misses > 0 {
			ratio = float64(hits) / float64(hits+misses)
		}
		body.Checks["redis:keyspace"] = []check{{ComponentType: "datastore", ObservedValue: ratio, ObservedUnit: "hitRatio", Status: pass, Time: now,
			Details: map[string]any{"scope": "whole server", "keys": info.keys, "hits": hits, "misses": misses,
				"evictedKeys": info.int("evicted_keys"), "expiredKeys": info.int("expired_keys")}}}
	}
	if c, ok := a.l1Check(now); ok {
		body.Checks["cache:l1"] = []check{c}
	}
	if a.Tally != nil {
		// Where getProduct runs in this process too (local run, HTTP mode), its pending
		// figures go in first; elsewhere there is nothing pending and no write.
		_ = a.Tally.Flush(ctx)
		c, err := a.Tally.Read(ctx)
		if err != nil {
			body.Notes = append(body.Notes, "application figures unavailable")
		} else {
			body.Checks["app:productCache"] = []check{{ComponentType: "component", ObservedValue: c.HitRatio(), ObservedUnit: "hitRatio", Status: pass, Time: now,
				Details: map[string]any{"scope": "all environments", "hits": c.Hits, "misses": c.Misses, "bypasses": c.Bypasses, "stale": c.Stale}}}
		}
	}
}

// info is INFO fields summed over the masters (one node outside cluster mode).
type info struct {
	fields map[string]string
	sums   map[string]int64
	keys   int64
	nodes  int
}

func (i info) str(k string) string { return i.fields[k] }
func (i info) int(k string) int64  { return i.sums[k] }

// summed INFO fields; others are taken from the first node.
var summed = []string{"used_memory", "maxmemory", "keyspace_hits", "keyspace_misses", "evicted_keys",
	"expired_keys", "connected_clients", "uptime_in_seconds"}

func serverInfo(ctx context.Context, client redis.UniversalClient) (info, error) {
	in := info{fields: map[string]string{}, sums: map[string]int64{}}
	var mu sync.Mutex
	add := func(ctx context.Context, c redis.UniversalClient) error {
		text, err := c.Info(ctx, "server", "clients", "memory", "stats", "keyspace", "replication").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		first := in.nodes == 0
		in.nodes++
		for _, line := range strings.Split(text, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				continue
			}
			if first {
				in.fields[k] = v
			}
			if strings.HasPrefix(k, "db") {
				// db0:keys=12,expires=3,avg_ttl=0
				if n, ok := strings.CutPrefix(strings.Split(v, ",")[0], "keys="); ok {
					c, _ := strconv.ParseInt(n, 10, 64)
					in.keys += c
				}
			}
		}
		for _, k := range summed {
			for _, line := range strings.Split(text, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), k+":"); ok {
					n, _ := strconv.ParseInt(v, 10, 64)
					if k == "uptime_in_seconds" {
						in.sums[k] = max(in.sums[k], n)
					} else {
						in.sums[k] += n
					}
				}
			}
		}
		return nil
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return add(ctx, c) })
		return in, err
	}
	return in, add(ctx, client)
}
