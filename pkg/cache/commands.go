package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetOptions are the options of Set.
type SetOptions struct {
	// TTL expires the key after this long; 0 keeps it forever (or keeps its TTL with
	// KeepTTL).
	TTL time.Duration
	// NX sets only if the key does not exist.
	NX bool
	// XX sets only if the key exists.
	XX bool
	// KeepTTL keeps the key's current TTL (Redis ≥ 6).
	KeepTTL bool
}

// Set stores value at key. It reports whether the value was set: false when NX or XX
// prevented it.
func (s *Service) Set(ctx context.Context, key, value string, o SetOptions) (bool, error) {
	if o.NX && o.XX {
		return false, errors.New("cache: set: NX and XX are exclusive")
	}
	if o.KeepTTL && o.TTL > 0 {
		return false, errors.New("cache: set: KeepTTL and TTL are exclusive")
	}
	args := redis.SetArgs{TTL: o.TTL, KeepTTL: o.KeepTTL}
	switch {
	case o.NX:
		args.Mode = "NX"
	case o.XX:
		args.Mode = "XX"
	}
	k := s.Key(key)
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		return c.SetArgs(ctx, k, value, args).Err()
	})
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, wrap("set", k, err)
	}
	return true, nil
}

// SetWithExpiry stores value at key for ttl (which must be positive).
func (s *Service) SetWithExpiry(ctx context.Context, key, value string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("cache: set %q: ttl must be positive, got %v", s.Key(key), ttl)
	}
	_, err := s.Set(ctx, key, value, SetOptions{TTL: ttl})
	return err
}

// Get returns the value at key, or ErrMiss. A key whose fill is in progress (it holds
// GetOrSet's lease) is a miss; of an entry GetOrSet stored it returns the value,
// without the entry's header, fresh or not.
func (s *Service) Get(ctx context.Context, key string) (string, error) {
	k := s.Key(key)
	var v string
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var err error
		v, err = c.Get(ctx, k).Result()
		return err
	})
	if err == nil && isLease(v) {
		return "", ErrMiss
	}
	if e, ok := parseEntry(v); ok && err == nil {
		return e.value, nil
	}
	return v, wrap("get", k, err)
}

// Del removes keys and returns how many existed. It is also an invalidation: a fill of
// one of the keys that is in progress holds its lease in the key, so it stores nothing
// (see GetOrSet). In cluster mode keys may live in different slots; each is removed on
// its own node.
func (s *Service) Del(ctx context.Context, keys ...string) (int64, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = s.Key(k)
	}
	var n int64
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		if _, ok := c.(*redis.ClusterClient); ok && len(full) > 1 {
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range full {
					p.Del(ctx, k)
				}
				return nil
			})
			for _, cmd := range cmds {
				n += cmd.(*redis.IntCmd).Val()
			}
			return err
		}
		var err error
		n, err = c.Del(ctx, full...).Result()
		return err
	})
	return n, wrap("del", full[0], err)
}

// HSet sets field in the hash at key and returns 1 if the field is new, 0 if updated.
func (s *Service) HSet(ctx context.Context, key, field, value string) (int64, error) {
	k := s.Key(key)
	var n int64
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var err error
		n, err = c.HSet(ctx, k, field, value).Result()
		return err
	})
	return n, wrap("hset", k, err)
}

// HGet returns field of the hash at key, or ErrMiss.
func (s *Service) HGet(ctx context.Context, key, field string) (string, error) {
	k := s.Key(key)
	var v string
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var err error
		v, err = c.HGet(ctx, k, field).Result()
		return err
	})
	return v, wrap("hget", k, err)
}

// HGetAll returns every field of the hash at key; an empty map when it does not exist.
func (s *Service) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	k := s.Key(key)
	var m map[string]string
	err := s.do(ctx, func(ctx context.Context, c redis.UniversalClient) error {
		var err error
		m, err = c.HGetAll(ctx, k).Result()
		return err
	})
	return m, wrap("hgetall", k, err)
}

// GetJSON decodes the JSON value at key into a T. A value that does not decode is
// reported as ErrMiss.
func GetJSON[T any](ctx context.Context, s *Service, key string) (T, error) {
	var v T
	raw, err := s.Get(ctx, key)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(bytesOf(raw), &v); err != nil {
		return v, ErrMiss
	}
	return v, nil
}

// SetJSON stores v as JSON at key for ttl (0: no expiry).
func SetJSON[T any](ctx context.Context, s *Service, key string, v T, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache: set %q: encode: %w", s.Key(key), err)
	}
	_, err = s.Set(ctx, key, string(b), SetOptions{TTL: ttl})
	return err
}
