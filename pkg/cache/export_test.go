package cache

import "time"

// LeaseMarker is a lease as a fill writes it into a key, for tests that play a holder.
const LeaseMarker = leasePrefix + "test-holder"

// IsLease reports whether v is a fill's lease marker.
func IsLease(v string) bool { return isLease(v) }

// Waiting reports how many callers are attached to key's in-process flights (key
// without the prefix).
func Waiting(s *Service, key string) int { return s.flights.waiting(s.Key(key)) }

// FencedStoreHash is the SHA1 of the fenced store script, for tests that replace it
// with the old unfenced SET to show what the fence prevents.
var FencedStoreHash = fencedStore.Hash()

// StoredValue returns the value inside a stored GetOrSet entry, or raw itself when raw
// is not one (a lease, a tombstone, anything else).
func StoredValue(raw string) string {
	if e, ok := parseEntry(raw); ok {
		return e.value
	}
	return raw
}

// NewEntry returns value as a fill stores it, fresh until fresh, for tests that plant
// another process's entry.
func NewEntry(value string, fresh time.Time) string {
	return encodeEntry(newGen(), fresh, time.Millisecond, value)
}

// SetClock makes s read entries' freshness with now.
func SetClock(s *Service, now func() time.Time) { s.now = now }

// EarlyDraw is one XFetch draw for an entry whose fetch took took, gap before it
// goes stale.
func EarlyDraw(s *Service, took, gap time.Duration) bool {
	now := time.Now()
	return s.early(entry{took: took, fresh: now.Add(gap)}, now)
}

// EndRefreshHash is the SHA1 of the script that settles a refresh, for tests that
// replace its store with a plain SET.
var EndRefreshHash = endRefresh.Hash()
