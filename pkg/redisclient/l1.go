package redisclient

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// TrackingOptions returns the options of the in-process tier's tracking client, made
// from the main client's: the same endpoint, credentials, TLS and timeouts; RESP3; a
// pool of exactly one connection, so that one round trip (the tier's barrier) covers
// every connection whose reads the server tracks; and store as its client-side cache
// (cache.L1.Store). It refuses what go-redis cannot cache for: cluster mode, several
// addresses, a database other than 0, RESP2, a credentials provider.
func TrackingOptions(base *redis.UniversalOptions, store redis.Cache) (*redis.UniversalOptions, error) {
	switch {
	case base.IsClusterMode || len(base.Addrs) != 1:
		return nil, errors.New("redisclient: l1: needs a standalone Redis (one address, not cluster mode)")
	case base.DB != 0:
		return nil, errors.New("redisclient: l1: go-redis caches database 0 only")
	case base.Protocol == 2:
		return nil, errors.New("redisclient: l1: invalidations need RESP3 (protocol=2 is set)")
	case base.CredentialsProvider != nil || base.CredentialsProviderContext != nil || base.StreamingCredentialsProvider != nil:
		return nil, errors.New("redisclient: l1: go-redis does not cache with a credentials provider")
	}
	o := *base
	o.Addrs = append([]string(nil), base.Addrs...)
	o.Protocol = 3
	o.PoolSize, o.MaxActiveConns, o.MinIdleConns, o.MaxIdleConns = 1, 1, 0, 1
	o.ClientSideCache = store
	o.ClientSideCacheConfig = nil
	return &o, nil
}

// NewTrackingLazy returns a holder for the tracking client, built on first use like
// NewLazy's. A client it replaces (after a failed dial) is closed at once, not after a
// grace period: go-redis then drops every entry that client's connection fetched, so
// no entry outlives the connection whose invalidations vouch for it while the tier's
// barriers run on the new client.
func NewTrackingLazy(opts *redis.UniversalOptions) *Lazy {
	l := NewLazy(opts)
	l.closeRetired = true
	return l
}

// Tracking returns a holder for the tracking client of the in-process tier, made from
// l's options with TrackingOptions. No I/O.
func (l *Lazy) Tracking(store redis.Cache) (*Lazy, error) {
	o, err := TrackingOptions(l.opts, store)
	if err != nil {
		return nil, err
	}
	return NewTrackingLazy(o), nil
}
