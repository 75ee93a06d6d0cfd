// Package tally keeps the application's cache figures (hits, misses, bypasses, stale) in
// Redis, so that what health reports is the whole application's, not one Lambda
// environment's: each process counts in memory and adds its counts to one hash in
// batches. The hash is not a cache entry: it lives outside the cache's key prefix, so
// no clear removes it.
package tally

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/cache"
	"github.com/redis/go-redis/v9"
)

// Tally counts GetOrSet outcomes for the whole application, across processes.
//
// A batch is written, in one round trip, by the Record call that finds it due (every
// Batch outcomes or Every, whichever comes first) and by Flush, which a function calls
// at shutdown. Counts that could not be written are kept for the next batch, so none
// are lost while Redis is down; counts of a process killed without shutdown are.
type Tally struct {
	s     *cache.Service
	key   string
	every time.Duration
	batch int64

	counts  [4]atomic.Int64 // by Outcome-1: hits, misses, bypasses, stale
	pending atomic.Int64
	last    atomic.Int64 // unix nanoseconds of the last write attempt
	mu      sync.Mutex   // one write at a time
}

// Counts are an application's outcome counts.
type Counts struct {
	Hits, Misses, Bypasses, Stale int64
}

// HitRatio is the share of reads answered from Redis, fresh or stale:
// (Hits + Stale) / (Hits + Misses + Bypasses + Stale), or 0 before any.
func (c Counts) HitRatio() float64 {
	total := c.Hits + c.Misses + c.Bypasses + c.Stale
	if total == 0 {
		return 0
	}
	return float64(c.Hits+c.Stale) / float64(total)
}

var tallyFields = [4]string{"hits", "misses", "bypasses", "stale"}

// New returns a Tally kept in the hash at key, the full Redis key, written through s
// (its breaker and timeouts) every batch outcomes or every interval. Keep key out of
// the Service's prefix: the figures are not cache entries, and whatever clears the
// cache (Service.Clear) must not reset them.
func New(s *cache.Service, key string, batch int, every time.Duration) *Tally {
	t := &Tally{s: s, key: key, every: every, batch: int64(max(batch, 1))}
	t.last.Store(time.Now().UnixNano())
	return t
}

// Record counts one outcome and writes the pending counts when a batch is due.
func (t *Tally) Record(ctx context.Context, o cache.Outcome) {
	if o < cache.Hit || o > cache.Stale {
		return
	}
	t.counts[o-1].Add(1)
	n := t.pending.Add(1)
	if n >= t.batch || time.Since(time.Unix(0, t.last.Load())) >= t.every {
		_ = t.Flush(ctx)
	}
}

// Flush writes the pending counts now. On failure they stay pending.
func (t *Tally) Flush(ctx context.Context) error {
	if !t.mu.TryLock() {
		return nil // another call is writing
	}
	defer t.mu.Unlock()
	t.last.Store(time.Now().UnixNano())
	var delta [4]int64
	for i := range delta {
		delta[i] = t.counts[i].Swap(0)
	}
	t.pending.Store(0)
	if delta == [4]int64{} {
		return nil
	}
	err := t.s.Do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, d := range delta {
				if d != 0 {
					p.HIncrBy(ctx, t.key, tallyFields[i], d)
				}
			}
			return nil
		})
		return err
	})
	if err != nil {
		for i, d := range delta {
			t.counts[i].Add(d)
			t.pending.Add(d)
		}
		return fmt.Errorf("tally: hincrby %q: %w", t.key, err)
	}
	return nil
}

// Read returns the application's counts as written so far by every process.
func (t *Tally) Read(ctx context.Context) (Counts, error) {
	var m map[string]string
	err := t.s.Do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var err error
		m, err = c.HGetAll(ctx, t.key).Result()
		return err
	})
	if err != nil {
		return Counts{}, fmt.Errorf("tally: hgetall %q: %w", t.key, err)
	}
	n := func(f string) int64 { v, _ := strconv.ParseInt(m[f], 10, 64); return v }
	return Counts{Hits: n("hits"), Misses: n("misses"), Bypasses: n("bypasses"), Stale: n("stale")}, nil
}
