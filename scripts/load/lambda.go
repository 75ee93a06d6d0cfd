package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/acmestore/storeapi/pkg/app"
	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/config"
	"github.com/acmestore/storeapi/pkg/product"
	"github.com/acmestore/storeapi/pkg/serve"
	"github.com/acmestore/storeapi/pkg/telemetry"
)

// lambdaDriver builds one getProduct execution environment per worker, as the
// function builds itself in Lambda mode (each an App of its own), and the v2 event of
// each product id. Call closeAll when the run is over: it closes every environment's
// App, as the runtime's SIGTERM would.
func lambdaDriver(cfg config.Config, ids []string, template []byte, c int, src product.Source) (do func(context.Context, int, string) (outcome, error), closeAll func(), stats func() cache.Stats, err error) {
	events := make(map[string][]byte, len(ids))
	var ev map[string]any
	if err := json.Unmarshal(template, &ev); err != nil {
		return nil, nil, nil, fmt.Errorf("event: %w", err)
	}
	oldID, _ := ev["pathParameters"].(map[string]any)["id"].(string)
	if oldID == "" {
		return nil, nil, nil, errors.New("event: no pathParameters.id")
	}
	for _, id := range ids {
		// The template's id appears in rawPath, requestContext.http.path,
		// pathParameters and the referer header: replace it everywhere.
		events[id] = bytes.ReplaceAll(template, []byte(oldID), []byte(id))
	}
	logger := telemetry.NewLogger(io.Discard, cfg.LogLevel)
	envs := make([]*serve.Lambda, c)
	apps := make([]*app.App, 0, c)
	closeAll = func() {
		for _, a := range apps {
			_ = a.Close()
		}
	}
	for i := range envs {
		a, err := app.New(cfg, app.WithSource(src))
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		apps = append(apps, a)
		envs[i] = serve.NewLambda(app.Handler(app.GetProduct, a.API, logger), app.LambdaOptions(app.GetProduct, logger))
	}
	stats = func() cache.Stats {
		var sum cache.Stats
		for _, a := range apps {
			sum = sum.Add(a.API.Cache.Stats())
		}
		return sum
	}
	hit, miss, byp, stale := []byte(`"X-Cache":"HIT"`), []byte(`"X-Cache":"MISS"`), []byte(`"X-Cache":"BYPASS"`), []byte(`"X-Cache":"STALE"`)
	l1 := []byte(`"X-Cache-Tier":"L1"`)
	do = func(ctx context.Context, w int, id string) (outcome, error) {
		// The runtime's context: the invocation's own deadline (a 30 s function
		// timeout), not the run's, so the run's end does not turn into 504s.
		ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		out, err := envs[w].Invoke(ictx, events[id])
		if err != nil {
			return outOther, err
		}
		if !bytes.Contains(out, []byte(`"statusCode":200`)) {
			return outOther, fmt.Errorf("response %.200s", out)
		}
		switch {
		case bytes.Contains(out, hit) && bytes.Contains(out, l1):
			return outHitL1, nil
		case bytes.Contains(out, hit):
			return outHit, nil
		case bytes.Contains(out, miss):
			return outMiss, nil
		case bytes.Contains(out, byp):
			return outBypass, nil
		case bytes.Contains(out, stale):
			return outStale, nil
		}
		return outOther, nil
	}
	return do, closeAll, stats, nil
}
