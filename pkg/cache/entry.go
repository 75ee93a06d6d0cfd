package cache

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// An entry is what a GetOrSet fill stores: a fixed-width text header, then the value.
// The header says until when the value is fresh and how long its fetch took (for early
// refresh), and holds the entry's refresh lease, so that everything about an entry
// lives in its one key: whatever removes the key (Del, Clear, expiry) removes the
// lease and the entry together, in any cluster slot. It is text, not binary, so that
// the Lua scripts compare and rewrite it with plain string operations and RedisInsight
// shows it readably.
//
//	offset  size  field
//	0       1     0x01, which no lease, tombstone, JSON or text value starts with
//	1       16    gen: the fill's random id, hex; a refresh stores only over the gen it saw
//	17      13    fresh: until when the value is fresh, Unix milliseconds
//	30      9     took: how long the fetch took, microseconds (capped)
//	39      13    until: end of the refresh lease, or of the backoff after a failed
//	              refresh, Unix milliseconds; 0 when neither
//	52      8     holder: the refresh lease's token, hex; 00000000 in a backoff
//	60      1     fails: failed refreshes in a row, '0' to '9'
//	61            the value
//
// Times are the writers' and readers' wall clocks: clocks a few milliseconds apart
// shift the moment an entry turns stale by as much, which the windows (seconds to
// minutes) absorb.
const (
	entryMagic   = '\x01'
	offGen       = 1
	offFresh     = 17
	offTook      = 30
	offUntil     = 39
	offHolder    = 52
	offFails     = 60
	headerLen    = 61
	maxTook      = 999_999_999
	noHolder     = "00000000"
	maxFailsByte = '9'
)

// entry is a parsed entry header and the value after it. The strings share the stored
// value's memory: parsing allocates nothing.
type entry struct {
	gen    string
	fresh  time.Time
	took   time.Duration
	until  time.Time
	holder string
	fails  int
	value  string
}

// parseEntry splits a stored entry into its header and value; ok is false for
// anything that is not an entry with a well-formed header.
func parseEntry(v string) (e entry, ok bool) {
	if len(v) < headerLen || v[0] != entryMagic {
		return e, false
	}
	fresh, ok1 := digits(v[offFresh:offTook])
	took, ok2 := digits(v[offTook:offUntil])
	until, ok3 := digits(v[offUntil:offHolder])
	fails := v[offFails]
	if !ok1 || !ok2 || !ok3 || fails < '0' || fails > maxFailsByte {
		return e, false
	}
	return entry{
		gen:    v[offGen:offFresh],
		fresh:  time.UnixMilli(fresh),
		took:   time.Duration(took) * time.Microsecond,
		until:  time.UnixMilli(until),
		holder: v[offHolder:offFails],
		fails:  int(fails - '0'),
		value:  v[headerLen:],
	}, true
}

// digits parses a fixed-width run of decimal digits.
func digits(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// newGen returns a random entry id.
func newGen() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newHolder returns a random refresh-lease token, never noHolder.
func newHolder() string {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		if h := hex.EncodeToString(b[:]); h != noHolder {
			return h
		}
	}
}

// encodeEntry returns the entry for value: fresh until fresh, fetched in took, with no
// refresh lease.
func encodeEntry(gen string, fresh time.Time, took time.Duration, value string) string {
	b := make([]byte, 0, headerLen+len(value))
	b = append(b, entryMagic)
	b = append(b, gen...)
	b = appendFixed(b, fresh.UnixMilli(), offTook-offFresh)
	b = appendFixed(b, min(max(took.Microseconds(), 0), maxTook), offUntil-offTook)
	b = appendFixed(b, 0, offHolder-offUntil)
	b = append(b, noHolder...)
	b = append(b, '0')
	b = append(b, value...)
	return string(b)
}

// appendFixed appends n in exactly width decimal digits, zero-padded (n fits: the
// callers cap it or it is a Unix millisecond time before the year 2286).
func appendFixed(b []byte, n int64, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], max(n, 0), 10)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// untilField is the until, holder and fails fields that take or end a refresh lease.
func untilField(until time.Time, holder string, fails int) string {
	b := make([]byte, 0, headerLen-offUntil)
	b = appendFixed(b, until.UnixMilli(), offHolder-offUntil)
	b = append(b, holder...)
	return string(append(b, byte('0'+min(max(fails, 0), 9))))
}

// takeRefresh takes an entry's refresh lease: only if the key still holds the entry
// with gen (ARGV[1]) and no lease or backoff runs at ARGV[2] (now, ms), it writes
// ARGV[3] (until, holder, fails) over the header's lease fields, in place (SETRANGE
// keeps the key's TTL). Returns 1 when taken, 0 when the entry is gone or replaced, -1
// when another holder's lease runs, -2 when a backoff runs.
var takeRefresh = redis.NewScript(`
local h = redis.call("GETRANGE", KEYS[1], 0, 60)
if #h < 61 or string.sub(h, 2, 17) ~= ARGV[1] then return 0 end
if tonumber(string.sub(h, 40, 52)) > tonumber(ARGV[2]) then
  if string.sub(h, 53, 60) == "00000000" then return -2 end
  return -1
end
redis.call("SETRANGE", KEYS[1], 39, ARGV[3])
return 1`)

// endRefresh settles a refresh lease: only if the key still holds the entry with gen
// ARGV[1] and the lease of holder ARGV[2], it either replaces the entry with ARGV[3]
// for ARGV[4] ms (ARGV[5] = "store"; "0" ms: no expiry), deletes it ("delete"), or
// writes ARGV[3] over the lease fields, a backoff ("fail"). Returns 1 when it did, 0
// when the fence held it back: the entry was removed or replaced meanwhile.
var endRefresh = redis.NewScript(`
local h = redis.call("GETRANGE", KEYS[1], 0, 60)
if #h < 61 or string.sub(h, 2, 17) ~= ARGV[1] or string.sub(h, 53, 60) ~= ARGV[2] then return 0 end
if ARGV[5] == "store" then
  if ARGV[4] == "0" then redis.call("SET", KEYS[1], ARGV[3])
  else redis.call("SET", KEYS[1], ARGV[3], "PX", ARGV[4]) end
elseif ARGV[5] == "delete" then redis.call("DEL", KEYS[1])
else redis.call("SETRANGE", KEYS[1], 39, ARGV[3]) end
return 1`)
