package cache

import (
	"context"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// clearBatch is how many keys one SCAN page asks for and one UNLINK pipeline removes.
const clearBatch = 500

// Clear removes every key under the prefix that matches pattern, a glob matched after
// the prefix ("product:*", "*"), with SCAN and UNLINK in batches, on every master in
// cluster mode; never FLUSHDB. Each page is one operation, with the breaker and the
// operation timeout. It returns how many keys it removed, also when it stops early:
// then the error says why, and when the caller's context ended it wraps the context's
// error (CauseOf: canceled) while Redis was fine.
//
// It is an invalidation: a fill in progress under pattern holds its lease in its key,
// and a key that exists from the start of the scan to its end is always found, so the
// fill's fenced store fails (see GetOrSet).
func (s *Service) Clear(ctx context.Context, pattern string) (int64, error) {
	match := s.Key(pattern)
	var total atomic.Int64
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		var cursor uint64
		for {
			var keys []string
			err := s.do(ctx, func(ctx context.Context, _ redis.UniversalClient) error {
				var err error
				keys, cursor, err = node.Scan(ctx, cursor, match, clearBatch).Result()
				if err != nil {
					return err
				}
				n, err := unlink(ctx, node, keys)
				total.Add(n)
				return err
			})
			if err != nil {
				return wrap("clear", match, err)
			}
			if cursor == 0 {
				return nil
			}
		}
	}
	client := s.conn.Client()
	if cc, ok := client.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
		return total.Load(), err
	}
	err := scan(ctx, client)
	return total.Load(), err
}

// unlink removes keys with one UNLINK each, pipelined: keys may hash to different
// cluster slots, where a multi-key UNLINK would fail with CROSSSLOT.
func unlink(ctx context.Context, c redis.UniversalClient, keys []string) (int64, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		return nil
	})
	var n int64
	for _, cmd := range cmds {
		n += cmd.(*redis.IntCmd).Val()
	}
	return n, err
}

// Invalidate removes the entries at keys, whatever their freshness, with their fill
// leases, and returns how many existed. A fill or refresh of one of them that is in
// progress stores nothing (see GetOrSet), so a read that starts after Invalidate has
// returned never gets a value fetched before it. It is Del under the name callers of
// a change feed look for.
func (s *Service) Invalidate(ctx context.Context, keys ...string) (int64, error) {
	return s.Del(ctx, keys...)
}
