package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tier says which tier answered a read of a key.
type Tier uint8

const (
	// TierL1 is the in-process tier: the value came from this process's memory.
	TierL1 Tier = iota + 1
	// TierL2 is Redis: the read made a round trip.
	TierL2
)

// String returns "L1" or "L2", as in the X-Cache-Tier header ("" for no read).
func (t Tier) String() string {
	switch t {
	case TierL1:
		return "L1"
	case TierL2:
		return "L2"
	}
	return ""
}

// L1Options configures an L1. The zero value of a field means its default.
type L1Options struct {
	// MaxBytes bounds the entries' memory (go-redis's estimate). default: 64 MiB
	MaxBytes int64
	// Bound is the stated staleness bound: a read that starts Bound after a write or
	// invalidation of a key has returned never gets an older value from L1. A hit is
	// served only while a barrier (a round trip on the tracking connection, which
	// applies every invalidation queued before it) completed within Bound; otherwise
	// the read makes one first. default: 50ms
	Bound time.Duration
	// Strict makes every read wait for a barrier that started after the read did, so
	// a read never misses an invalidation of a write that returned before it began.
	// For Lambda, where a frozen environment's clocks cannot be trusted to say how
	// long it was frozen.
	Strict bool
	// Backstop is the longest an entry is served after it was fetched, whatever the
	// barriers say: a last line against a lost invalidation. default: 30s
	Backstop time.Duration
	// BarrierTimeout bounds one barrier. default: 1s
	BarrierTimeout time.Duration
	// OnOff, when set, is called once when the tier turns itself off (the server
	// refuses tracking), with the reason, for the caller's one log line.
	OnOff func(reason string)
}

// L1 is an in-process tier on go-redis's server-assisted client-side caching: a
// tracking client (see [L1.Store]) keeps the values it read in this process, and Redis
// tells it (RESP3 invalidation messages) when one of those keys changes.
//
// go-redis applies an invalidation when it next reads the connection that carries
// it: a command on it, or its background drainer every millisecond or so. Neither
// runs while a process is frozen (Lambda), and the drainer can fall behind under
// load. So L1 enforces its bound itself: the tracking client has one connection, and
// a hit is served only while a barrier on it, CLIENT TRACKINGINFO, completed within
// Bound (Strict: after the read began). The barrier's reply follows every
// invalidation the server queued before it, and go-redis applies those before it
// reads the reply; its answer also says that tracking is on. A connection that is
// lost takes its entries with it (go-redis evicts what a removed connection fetched),
// and the next barrier runs on a new one. In the HTTP mode a background ticker keeps
// the barrier fresh (every Bound/8 while reads come), and a read never waits for
// one: a read that finds none recent enough goes to Redis on the main pool and starts
// one in the background (at most one runs), so a slow barrier on the one tracking
// connection cannot hold up a crowd of readers. Under Lambda (Strict) each read
// waits for its own.
//
// The tier turns itself off for good, leaving Redis only, when the server refuses
// tracking (CLIENT TRACKINGINFO fails, or says tracking is off).
//
// Its methods are safe for concurrent use. Close stops its ticker; the tracking
// client is closed by whoever made it.
type L1 struct {
	o     L1Options
	local *redis.LocalCache
	conn  Conn
	epoch time.Time

	synced atomic.Pointer[syncPoint]
	off    atomic.Pointer[string]

	mu       sync.Mutex
	inflight *barrierCall
	stop     chan struct{}
	tickDone chan struct{}
	closed   bool
	kicks    sync.WaitGroup // background barriers started by reads
	ticking  atomic.Bool
	kicking  atomic.Bool
	lastRead atomic.Int64

	invalidations, flushes, connEvictions atomic.Uint64
	barriers, barrierFails, barrierNanos  atomic.Uint64
	refused                               atomic.Uint64
}

// syncPoint is when a barrier that completed was sent: every invalidation the server
// queued before then has been applied.
type syncPoint struct {
	mono int64 // since L1.epoch, monotonic
	wall int64 // Unix ns, to notice a sleep the monotonic clock did not count
}

type barrierCall struct {
	start int64
	done  chan struct{}
	err   error
}

// errTrackingOff is a barrier's answer once the tier has turned itself off.
var errTrackingOff = errors.New("cache: l1: tracking is off")

// NewL1 returns an L1 whose store is ready to hand to the tracking client
// ([L1.Store]); it serves nothing until [L1.Attach] gives it that client. No I/O.
func NewL1(o L1Options) *L1 {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.Bound <= 0 {
		o.Bound = 50 * time.Millisecond
	}
	if o.Backstop <= 0 {
		o.Backstop = 30 * time.Second
	}
	if o.BarrierTimeout <= 0 {
		o.BarrierTimeout = time.Second
	}
	return &L1{
		o:     o,
		epoch: time.Now(),
		local: redis.NewLocalCache(redis.CacheConfig{
			MaxMemoryBytes: o.MaxBytes,
			MaxStaleness:   o.Backstop,
			DrainInterval:  time.Millisecond,
		}),
	}
}

// L1Off returns an L1 that never serves, whose state says why (health shows it).
func L1Off(reason string) *L1 {
	l := NewL1(L1Options{})
	l.off.Store(&reason)
	return l
}

// Store is the go-redis cache the tracking client must be built with
// (Options.ClientSideCache). It enforces the bound on every lookup.
func (l *L1) Store() redis.Cache { return tracked{l} }

// Attach gives the tier its tracking client: a standalone RESP3 client built with
// Store as its ClientSideCache, with a pool of exactly one connection (PoolSize and
// MaxActiveConns 1), so that a barrier covers every connection that holds entries.
func (l *L1) Attach(c Conn) { l.conn = c }

// Bound returns the stated staleness bound.
func (l *L1) Bound() time.Duration { return l.o.Bound }

// State reports whether the tier serves, and why not when it does not.
func (l *L1) State() (on bool, why string) {
	if l == nil {
		return false, "not configured"
	}
	if p := l.off.Load(); p != nil {
		return false, *p
	}
	if l.conn == nil {
		return false, "no tracking client"
	}
	return true, ""
}

// L1Stats are the tier's figures in this process.
type L1Stats struct {
	// On says whether the tier serves; Off the reason when it does not.
	On  bool
	Off string
	// Entries and Bytes are what it holds now.
	Entries int
	Bytes   int64
	// Hits and Misses count lookups in the local store.
	Hits, Misses uint64
	// Invalidations counts keys named by the server's invalidation messages that were
	// applied; Flushes whole flushes (FLUSHDB, or the tier turning off);
	// ConnEvictions entries dropped because the connection that fetched them went
	// away (the server no longer tracks them for this process).
	Invalidations, Flushes, ConnEvictions uint64
	// Barriers counts round trips made to apply pending invalidations, BarrierFails
	// those that failed, BarrierTime their total time.
	Barriers, BarrierFails uint64
	BarrierTime            time.Duration
	// Refused counts lookups turned away because no barrier had completed within
	// the bound (they were read from Redis).
	Refused uint64
}

// Stats returns the tier's figures.
func (l *L1) Stats() L1Stats {
	if l == nil {
		return L1Stats{Off: "not configured"}
	}
	on, why := l.State()
	s := l.local.Stats()
	return L1Stats{
		On: on, Off: why, Entries: s.Entries, Bytes: s.MemoryUsageBytes, Hits: s.Hits, Misses: s.Misses,
		Invalidations: l.invalidations.Load(), Flushes: l.flushes.Load(), ConnEvictions: l.connEvictions.Load(),
		Barriers: l.barriers.Load(), BarrierFails: l.barrierFails.Load(),
		BarrierTime: time.Duration(l.barrierNanos.Load()), Refused: l.refused.Load(),
	}
}

// Close stops the background ticker and waits for it. The tier serves nothing
// afterwards that a barrier did not vouch for; it does not close the tracking client.
func (l *L1) Close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.closed = true
	stop, done := l.stop, l.tickDone
	l.stop = nil
	l.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	l.kicks.Wait()
}

// L1 returns the Service's in-process tier, or nil.
func (s *Service) L1() *L1 { return s.o.L1 }

// readKey is call.read's GET of key: through the in-process tier when the Service has
// one that serves (r.Tier says whether the value came from memory), else from Redis,
// with r.Tier left unset: with no tier there is nothing to tell apart, and the hit path
// (Lambda's) pays for no header or log field saying so.
func (s *Service) readKey(ctx context.Context, cl redis.UniversalClient, key string, r *Result) (string, error) {
	v, tier, err, ok := s.o.L1.get(ctx, key)
	if ok {
		r.Tier = tier
		return v, err
	}
	v, err = cl.Get(ctx, key).Result()
	r.Tier = tier
	return v, err
}

// l1Read is one read through the tier; its lookup in the store learns from it when
// the read began, and tells it whether the value came from memory.
type l1Read struct {
	start int64
	hit   bool
}

type l1ReadKey struct{}

// get reads key through the tracking client, and says which tier answered. ok is
// false when the caller must read Redis itself: the tier does not serve (tier 0), or,
// in the HTTP setting, no barrier vouches for it right now (tier L2): the read then
// goes to Redis on the main pool at once, while a barrier runs in the background,
// rather than queue behind it on the tracking connection.
func (l *L1) get(ctx context.Context, key string) (v string, tier Tier, err error, ok bool) {
	if l == nil || l.conn == nil || l.off.Load() != nil {
		return "", 0, nil, false
	}
	now, _ := l.clock()
	rd := &l1Read{start: now}
	if l.o.Strict {
		if err := l.sync(ctx, rd.start); err != nil {
			if errors.Is(err, errTrackingOff) {
				return "", 0, nil, false
			}
			return "", 0, err, true
		}
	} else {
		l.tick(now)
		if !l.fresh(l.o.Bound * 3 / 4) {
			l.kick()
			return "", TierL2, nil, false
		}
	}
	v, err = l.conn.Client().Get(context.WithValue(ctx, l1ReadKey{}, rd), key).Result()
	if rd.hit {
		return v, TierL1, err, true
	}
	return v, TierL2, err, true
}

func (l *L1) clock() (mono, wall int64) {
	t := time.Now()
	return int64(t.Sub(l.epoch)), t.UnixNano()
}

// fresh reports whether a barrier completed that was sent within the last `within`,
// by both clocks.
func (l *L1) fresh(within time.Duration) bool {
	p := l.synced.Load()
	if p == nil {
		return false
	}
	mono, wall := l.clock()
	w := time.Duration(wall - p.wall)
	return time.Duration(mono-p.mono) <= within && w >= -time.Millisecond && w <= within+time.Millisecond
}

// servable is the bound, checked at every lookup: a hit only when a barrier vouches
// for it (Strict: one sent after the read began).
func (l *L1) servable(rd *l1Read) bool {
	if l.off.Load() != nil {
		return false
	}
	if l.o.Strict {
		p := l.synced.Load()
		return rd != nil && p != nil && p.mono >= rd.start
	}
	return l.fresh(l.o.Bound)
}

// sync waits for a barrier sent at or after notBefore (monotonic ns since epoch),
// joining one in flight when it qualifies.
func (l *L1) sync(ctx context.Context, notBefore int64) error {
	l.mu.Lock()
	b := l.inflight
	if b != nil && b.start >= notBefore {
		l.mu.Unlock()
		select {
		case <-b.done:
			return b.err
		case <-ctx.Done():
			return fmt.Errorf("cache: l1 barrier: %w", ctx.Err())
		}
	}
	mono, wall := l.clock()
	b = &barrierCall{start: mono, done: make(chan struct{})}
	l.inflight = b
	l.mu.Unlock()

	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.BarrierTimeout)
	b.err = l.barrier(bctx, syncPoint{mono: mono, wall: wall})
	cancel()
	l.mu.Lock()
	if l.inflight == b {
		l.inflight = nil
	}
	l.mu.Unlock()
	close(b.done)
	return b.err
}

// barrier makes one round trip on the tracking connection, sent after at: when its
// reply is read, go-redis has applied every invalidation queued before it.
func (l *L1) barrier(ctx context.Context, at syncPoint) error {
	if l.off.Load() != nil {
		return errTrackingOff
	}
	start := time.Now()
	res, err := l.conn.Client().Do(ctx, "CLIENT", "TRACKINGINFO").Result()
	l.barriers.Add(1)
	l.barrierNanos.Add(uint64(time.Since(start)))
	var reply redis.Error
	switch {
	case err != nil && errors.As(err, &reply) && !errors.Is(err, redis.Nil):
		l.turnOff("the server refused CLIENT TRACKINGINFO: L2 only")
		return errTrackingOff
	case err != nil:
		l.barrierFails.Add(1)
		return fmt.Errorf("cache: l1 barrier: %w", err)
	case !trackingOn(res):
		l.turnOff("the server did not turn tracking on for the connection: L2 only")
		return errTrackingOff
	}
	for {
		p := l.synced.Load()
		if p != nil && p.mono >= at.mono {
			return nil
		}
		if l.synced.CompareAndSwap(p, &at) {
			return nil
		}
	}
}

// trackingOn reads CLIENT TRACKINGINFO's flags (a map in RESP3, pairs in RESP2).
func trackingOn(res any) bool {
	var flags any
	switch m := res.(type) {
	case map[any]any:
		flags = m["flags"]
	case []any:
		for i := 0; i+1 < len(m); i += 2 {
			if k, _ := m[i].(string); k == "flags" {
				flags = m[i+1]
			}
		}
	}
	list, _ := flags.([]any)
	for _, f := range list {
		if s, _ := f.(string); strings.EqualFold(s, "on") {
			return true
		}
	}
	return false
}

func (l *L1) turnOff(reason string) {
	if l.off.CompareAndSwap(nil, &reason) {
		l.local.Flush()
		l.flushes.Add(1)
		if l.o.OnOff != nil {
			l.o.OnOff(reason)
		}
	}
}

// tickIdle is how long the ticker runs on after the last read through the tier.
const tickIdle = time.Second

// tick notes a read at now (monotonic ns since epoch) and starts the background
// ticker if it is not running: it sends a barrier every Bound/8 while reads come,
// so that they seldom find none recent enough. Its fast path is two atomic loads.
func (l *L1) tick(now int64) {
	if now-l.lastRead.Load() > int64(time.Millisecond) {
		l.lastRead.Store(now)
	}
	if l.ticking.Load() {
		return
	}
	l.mu.Lock()
	if l.ticking.Load() || l.closed {
		l.mu.Unlock()
		return
	}
	l.ticking.Store(true)
	stop, done := make(chan struct{}), make(chan struct{})
	l.stop, l.tickDone = stop, done
	l.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(max(l.o.Bound/8, 250*time.Microsecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			now, _ := l.clock()
			if time.Duration(now-l.lastRead.Load()) > tickIdle {
				l.mu.Lock()
				l.ticking.Store(false)
				l.mu.Unlock()
				return
			}
			if !l.fresh(l.o.Bound / 4) {
				_ = l.sync(context.Background(), 0)
			}
		}
	}()
}

// kick starts a barrier in the background unless one is running: a read that found
// none recent enough went to Redis, and the reads after it should find one.
func (l *L1) kick() {
	if !l.kicking.CompareAndSwap(false, true) {
		return
	}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.kicks.Add(1)
	}
	l.mu.Unlock()
	if closed {
		l.kicking.Store(false)
		return
	}
	go func() {
		defer l.kicks.Done()
		defer l.kicking.Store(false)
		_ = l.sync(context.Background(), 0)
	}()
}

// tracked is the go-redis cache of the tracking client: go-redis's LocalCache with
// the bound checked at every lookup and the invalidations counted.
type tracked struct{ l *L1 }

func (t tracked) Get(ctx context.Context, cacheKey string) ([]byte, bool) {
	rd, _ := ctx.Value(l1ReadKey{}).(*l1Read)
	if !t.l.servable(rd) {
		t.l.refused.Add(1)
		// Fetch it again rather than keep a value nothing vouches for.
		t.l.local.DeleteByCacheKey(cacheKey)
		return nil, false
	}
	v, ok := t.l.local.Get(ctx, cacheKey)
	if ok && rd != nil {
		rd.hit = true
	}
	return v, ok
}

func (t tracked) Reserve(cacheKey string, redisKeys []string) (uint64, bool) {
	if t.l.off.Load() != nil {
		return 0, true
	}
	return t.l.local.Reserve(cacheKey, redisKeys)
}

func (t tracked) FulfillOwned(cacheKey string, token, ownerConnID uint64, value []byte) bool {
	return t.l.local.FulfillOwned(cacheKey, token, ownerConnID, value)
}

func (t tracked) Cancel(cacheKey string, token uint64) bool {
	return t.l.local.Cancel(cacheKey, token)
}

func (t tracked) DeleteByRedisKey(redisKey string) int {
	t.l.invalidations.Add(1)
	return t.l.local.DeleteByRedisKey(redisKey)
}

func (t tracked) DeleteByCacheKey(cacheKey string) bool {
	return t.l.local.DeleteByCacheKey(cacheKey)
}

func (t tracked) EvictByConn(connID uint64) int {
	n := t.l.local.EvictByConn(connID)
	t.l.connEvictions.Add(uint64(n))
	return n
}

func (t tracked) Flush() int {
	t.l.flushes.Add(1)
	return t.l.local.Flush()
}
