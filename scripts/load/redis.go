package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/acmestore/storeapi/pkg/product"
)

// redisDriver is the spec's basic load: SETs (a fraction writeRatio) and GETs of the
// catalog's product bytes through cache.Service.
func redisDriver(svc *cache.Service, cat *product.Catalog, writeRatio float64) func(context.Context, int, string) (outcome, error) {
	values := map[string]string{}
	for _, id := range cat.IDs() {
		p, err := cat.Product(context.Background(), id)
		if err != nil {
			continue
		}
		b, _ := json.Marshal(p)
		values[id] = string(b)
	}
	var n atomic.Uint64
	every := uint64(0)
	if writeRatio > 0 {
		every = uint64(math.Round(1 / writeRatio))
	}
	warmed := sync.Map{}
	return func(ctx context.Context, _ int, id string) (outcome, error) {
		_, seen := warmed.LoadOrStore(id, true)
		if !seen || (every > 0 && n.Add(1)%every == 0) {
			return outSet, svc.SetWithExpiry(ctx, "load:"+id, values[id], time.Hour)
		}
		_, err := svc.Get(ctx, "load:"+id)
		switch {
		case errors.Is(err, cache.ErrMiss):
			return outMiss, nil
		case err != nil:
			return outOther, err
		}
		return outHit, nil
	}
}
