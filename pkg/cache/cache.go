// Package cache is the Redis service of the store's functions: the SPEC's RedisService
// in Go idiom, and cache-aside (GetOrSet) made for AWS Lambda.
//
// Every key goes through the configured prefix. Reads of a missing key return ErrMiss;
// callers never see redis.Nil. Every operation is bounded by the operation timeout, and
// a circuit breaker skips Redis during an outage: only connection faults and timeouts
// count against it, never a reply from a working server (OOM, WRONGTYPE).
//
// GetOrSet fails open: when Redis errs or the breaker is open it fetches from the source
// and returns the value, so a reader who could have been served never sees a Redis
// error. It protects the source from stampedes across processes with a short fill lease
// in Redis, which also works where each process serves one request at a time (Lambda),
// and, when enabled, with in-process deduplication for long-lived servers.
//
// Freshness: invalidation wins. The fill lease is kept in the key itself, and a fill
// stores its value only if its lease is still there (a fenced fill), so Del and Clear,
// which remove the key, also remove any lease on it: a read that starts after an
// invalidation has returned never gets a value fetched before it. Entries may be served
// past their TTL (stale-while-revalidate, stale-if-error) while a fenced refresh runs:
// never past an invalidation. See GetOrSet.
//
// The package does not log. Each call reports what happened in a [Result], and
// [Service.Stats] returns running counters, for the caller to log and publish.
package cache

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/acmestore/storeapi/pkg/fault"
	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

var (
	// ErrMiss is returned by reads of a key (or field) that does not exist.
	ErrMiss = errors.New("cache: miss")
	// ErrNotFound is what a fetch function returns (wrapped or as is) for a value that
	// does not exist at the source; GetOrSet then remembers it for NegativeTTL.
	ErrNotFound = errors.New("cache: not found")
	// ErrUnavailable is returned, wrapped with the cause, when the breaker is open and
	// an operation that needs Redis is skipped.
	ErrUnavailable = errors.New("cache: redis unavailable")
)

// Conn gives the Service its Redis client on each call, so a shared holder
// (redisclient.Lazy) can build it on first use and rebuild it after Close. The Service
// never closes it: whoever made the client closes it.
type Conn interface {
	Client() redis.UniversalClient
}

type fixed struct{ c redis.UniversalClient }

func (f fixed) Client() redis.UniversalClient { return f.c }

// Fixed is a Conn that always returns c, for tests and programs that own their client.
func Fixed(c redis.UniversalClient) Conn { return fixed{c} }

// Options configures a Service. The zero value of a field means its default.
type Options struct {
	// Prefix starts every key. Required; see config.CheckPrefix.
	Prefix string
	// OpTimeout bounds each operation, retries included. default: 750ms
	OpTimeout time.Duration
	// TTLJitter shortens each GetOrSet TTL by a random fraction up to this. default: 0
	TTLJitter float64
	// NegativeTTL is how long GetOrSet remembers ErrNotFound. default: 0 (never)
	NegativeTTL time.Duration
	// LeaseTTL is how long a fill lease lives if its holder dies. default: 2s
	LeaseTTL time.Duration
	// LeaseWait is the longest a caller waits for another's fill before fetching
	// itself (and storing nothing: only the lease holder stores). default: 0, which
	// fetches at once when another caller holds the lease. The lease is taken whatever
	// this is: it is the fence that keeps a fill from storing over an invalidation.
	LeaseWait time.Duration
	// Dedupe joins concurrent misses of one key in this process into one fill. Worth it
	// in a long-lived server; useless under Lambda (one request per process).
	Dedupe bool
	// FillTimeout bounds a shared fill (Dedupe), which runs detached from its callers
	// so that one who leaves does not cancel the others. default: LeaseWait + LeaseTTL
	// + 2×OpTimeout
	FillTimeout time.Duration
	// BreakerFailures is how many consecutive faults open the breaker. default: 3
	BreakerFailures int
	// BreakerCooldown is how long the breaker stays open before a probe. default: 5s
	BreakerCooldown time.Duration
	// StaleWhileRevalidate is how long after its TTL an entry is still served, as
	// Outcome Stale, while one refresh of it runs (see GetOrSet). default: 0 (a
	// stale entry is a miss)
	StaleWhileRevalidate time.Duration
	// StaleIfError is how long after the StaleWhileRevalidate window an entry is kept
	// to be served, as Outcome Stale, when its refresh fails. Inside it a reader
	// refreshes before answering. default: 0
	StaleIfError time.Duration
	// BackgroundRefresh refreshes a stale entry (or one due for early refresh) after
	// answering, on a goroutine bounded by FillTimeout: for long-lived servers. Off,
	// the caller that takes the entry's refresh lease refreshes before answering and
	// the others are served at once: for Lambda, where nothing runs after the
	// response. default: false
	BackgroundRefresh bool
	// EarlyRefresh is the XFetch β: a fresh entry is refreshed before its TTL ends
	// with a probability that rises as the end nears, in proportion to how long its
	// fetch took, so that a hot key is refreshed about once per TTL and never
	// expires under its readers. 1 is the paper's choice; larger refreshes earlier.
	// default: 0 (off)
	EarlyRefresh float64
	// RefreshBackoff is how long no refresh of an entry is tried after one failed,
	// doubling with each failure in a row up to 32 times. default: 1s
	RefreshBackoff time.Duration
	// L1 is the in-process tier GetOrSet reads through, or nil for none. See L1.
	L1 *L1
	// WaitHook, when set, is called as a GetOrSet call starts waiting for a fill it
	// does not run: another caller's, whose lease it found in Redis (inProcess
	// false), or, with Dedupe, another call's in this process (inProcess true). The
	// function it returns is called once, when that wait ends. It lets the caller
	// trace the waits without this package knowing any tracing library; it runs on
	// the calling goroutine and must be quick. default: nil
	WaitHook func(ctx context.Context, key string, inProcess bool) (end func())
}

// Service is the cache. It is safe for concurrent use.
type Service struct {
	conn    Conn
	o       Options
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	flights group

	// connected is set by a command that got a reply and cleared by a fault.
	connected atomic.Bool
	// lastCause is the cause of the last fault, reported by calls the breaker skips.
	lastCause atomic.Pointer[fault.Cause]
	stats     counters

	// now is the clock entries' freshness is read with (tests move it).
	now func() time.Time
	// refreshing holds the keys a background refresh runs for; background counts
	// those refreshes, for Wait.
	refreshing sync.Map
	background sync.WaitGroup
}

// New returns a Service on conn. It does no I/O.
func New(conn Conn, o Options) *Service {
	if o.OpTimeout <= 0 {
		o.OpTimeout = 750 * time.Millisecond
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Second
	}
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = 3
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = 5 * time.Second
	}
	if o.FillTimeout <= 0 {
		o.FillTimeout = o.LeaseWait + o.LeaseTTL + 2*o.OpTimeout
	}
	if o.RefreshBackoff <= 0 {
		o.RefreshBackoff = time.Second
	}
	s := &Service{conn: conn, o: o, now: time.Now}
	s.flights.m = map[string]*flight{}
	failures := uint32(o.BreakerFailures)
	s.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     o.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// A reply from a working server is a success for the breaker.
		IsSuccessful: func(err error) bool { return !classify(err).Fault() },
		// A caller that gave up says nothing about Redis.
		IsExcluded: func(err error) bool { return classify(err) == fault.CauseCanceled },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				s.stats.breakerOpens.Add(1)
			}
		},
	})
	return s
}

// Key returns the full Redis key for key: the prefix followed by key.
func (s *Service) Key(key string) string { return s.o.Prefix + key }

// Prefix is the configured key prefix.
func (s *Service) Prefix() string { return s.o.Prefix }

// Namespace is a family of keys with a schema version: bump the version when the shape
// of the stored value changes, and a deploy never reads entries of the old shape.
type Namespace struct {
	name string
}

// Versioned returns the namespace name at schema version v: its keys look like
// "name:v3:id" (under the Service's prefix).
func Versioned(name string, v int) Namespace {
	return Namespace{name: name + ":v" + strconv.Itoa(v) + ":"}
}

// Key returns the namespace's key for id, without the Service prefix.
func (n Namespace) Key(id string) string { return n.name + id }

// Pattern returns the glob that matches every key of the namespace, without the prefix.
func (n Namespace) Pattern() string { return n.name + "*" }

// Do runs op against the Service's client with the protection every Service command
// has: the circuit breaker, the operation timeout and the fault counters. Use it for
// commands the Service does not offer. It returns ErrUnavailable (wrapped with the
// last cause) without calling op when the breaker is open; op's error is returned as
// is (redis.Nil included).
func (s *Service) Do(ctx context.Context, op func(ctx context.Context, c redis.UniversalClient) error) error {
	return s.do(ctx, op)
}

// do runs op against Redis through the breaker, within the operation timeout. It
// returns ErrUnavailable (wrapping the open-breaker error) without calling op when the
// breaker is open. A reply error (redis.Nil included) is returned as is. When the
// caller's own context ends first, the error is a *callerDone: it says nothing about
// Redis, so it neither counts against the breaker nor turns into a bypass.
func (s *Service) do(ctx context.Context, op func(ctx context.Context, c redis.UniversalClient) error) error {
	done, err := s.breaker.Allow()
	if err != nil {
		s.stats.skipped.Add(1)
		cause := fault.CauseUnknown
		if c := s.lastCause.Load(); c != nil {
			cause = *c
		}
		return fmt.Errorf("%w: %w: %w", ErrUnavailable, &Error{Cause: cause}, err)
	}
	opCtx, cancel := s.bound(ctx)
	err = op(opCtx, s.conn.Client())
	cancel()
	if err != nil {
		if cerr := callerGone(ctx); cerr != nil {
			err = &callerDone{ctx: cerr, err: err}
		}
	}
	done(err)
	switch cause := classify(err); {
	case cause.Fault():
		s.connected.Store(false)
		s.lastCause.Store(&cause)
		s.stats.errors.Add(1)
	case cause == fault.CauseCanceled:
	default:
		s.connected.Store(true)
		if cause != fault.CauseNone {
			s.stats.errors.Add(1)
		}
	}
	return err
}

// callerDone is a Redis error that happened because the caller's context ended.
type callerDone struct{ ctx, err error }

func (e *callerDone) Error() string   { return e.ctx.Error() + ": " + e.err.Error() }
func (e *callerDone) Unwrap() []error { return []error{e.ctx, e.err} }

// callerGone returns the caller's context error, also in the moment after its deadline
// passed and before its timer fired: a socket deadline taken from the context can
// expire first.
func callerGone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func classify(err error) fault.Cause {
	if err == nil {
		return fault.CauseNone
	}
	var cd *callerDone
	if errors.As(err, &cd) {
		return fault.CauseCanceled
	}
	return fault.Classify(err)
}

func noCancel() {}

// bound applies the operation timeout unless ctx already ends sooner.
func (s *Service) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.o.OpTimeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, s.o.OpTimeout)
}

// wrap adds the operation and key to a Redis error; redis.Nil becomes ErrMiss.
func wrap(op, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return ErrMiss
	case errors.Is(err, ErrUnavailable):
		return fmt.Errorf("cache: %s %q: %w", op, key, err)
	}
	return fmt.Errorf("cache: %s %q: %w: %w", op, key, &Error{Cause: classify(err)}, err)
}

// Error carries the classified cause of a failed operation; find it with errors.As.
type Error struct {
	Cause fault.Cause
}

func (e *Error) Error() string { return string(e.Cause) }

// CauseOf returns the classified cause of an error from this package (or go-redis).
func CauseOf(err error) fault.Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	if errors.Is(err, ErrUnavailable) {
		return fault.CauseUnknown
	}
	return classify(err)
}

// IsConnected reports the last known state, without I/O: a command got a reply from
// Redis, the last one did not fail on its connection, and the breaker is closed. It is
// false before the first command.
func (s *Service) IsConnected() bool {
	return s.breaker.State() == gobreaker.StateClosed && s.connected.Load()
}

// BreakerOpen reports whether the breaker currently skips Redis.
func (s *Service) BreakerOpen() bool { return s.breaker.State() == gobreaker.StateOpen }

// ValidJSON reports whether s is one whole JSON value, without allocating: the cheap
// check that a stored entry was not cut short or corrupted. It judges as
// encoding/json.Valid does, in a fraction of its time.
func ValidJSON(s string) bool { return validJSON(bytesOf(s)) }

// bytesOf views s as bytes without copying; the result must not be modified.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func jitter(ttl time.Duration, frac float64) time.Duration {
	if frac <= 0 || ttl <= 0 {
		return ttl
	}
	return ttl - time.Duration(mrand.Float64()*frac*float64(ttl))
}
