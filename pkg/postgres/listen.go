package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/product"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ChannelSuffix ends the name of the channel the schema's trigger notifies: the
// channel is "<schema>.product_changes", the schema being the one that holds the
// products table.
const ChannelSuffix = ".product_changes"

// AllProducts is the payload of a notification that every product changed (a
// TRUNCATE of the table).
const AllProducts = "*"

// ListenerOptions configure a [Listener]. Invalidate is required.
type ListenerOptions struct {
	// Invalidate drops the products with these ids from the caches. It is called from
	// the Listener's one goroutine, never concurrently, with at most 500 ids. A failure
	// is retried: the Listener then catches up from its last checkpoint (see Listener).
	Invalidate func(ctx context.Context, ids []string) error

	// InvalidateAll drops every product from the caches, after a TRUNCATE. nil: such a
	// change is logged and otherwise left to the cache's TTL.
	InvalidateAll func(ctx context.Context) error

	// Logger receives the Listener's connects, disconnects and failures (never a
	// password). nil: slog.Default().
	Logger *slog.Logger

	// ConnectTimeout bounds one connection attempt. default: 5s
	ConnectTimeout time.Duration

	// Credentials, if set, supplies the password (and optionally the user) of each
	// connection, as in [Options].
	Credentials Credentials

	// CheckpointInterval is how often the Listener records how far it has heard, so
	// that a catch-up after a gap goes back no further than about twice this.
	// default: 30s
	CheckpointInterval time.Duration

	// MinBackoff and MaxBackoff bound the wait before a reconnect, which doubles from
	// the one to the other while connects fail. defaults: 100ms and 5s
	MinBackoff, MaxBackoff time.Duration

	// InvalidateTimeout bounds one call of Invalidate or InvalidateAll. default: 5s
	InvalidateTimeout time.Duration

	// Checkpoints, if set, keeps the checkpoint beyond this process, where the caches
	// are: a Listener that starts (a restart, a deploy) catches up from the checkpoint
	// saved by any Listener feeding the same caches, so changes made while none ran
	// are not left to the TTL. nil: each Listener starts without a checkpoint.
	Checkpoints CheckpointStore
}

// CheckpointStore keeps a Listener's checkpoint where the caches it feeds are. A
// checkpoint saved by one Listener is valid for every Listener of the same caches:
// every change it sees has been invalidated there. Errors are logged and otherwise
// ignored (the Listener then starts without a checkpoint, or keeps its own).
type CheckpointStore interface {
	// Load returns the last checkpoint saved, "" if none.
	Load(ctx context.Context) (string, error)
	// Save records checkpoint.
	Save(ctx context.Context, checkpoint string) error
}

// ListenerStats are a Listener's counts since it was built.
type ListenerStats struct {
	Connects      int64 // sessions started (LISTEN done)
	Notifications int64 // notifications received
	Invalidated   int64 // ids passed to Invalidate by notifications
	CatchUps      int64 // catch-ups run after a gap or a failed invalidation
	CaughtUp      int64 // ids passed to Invalidate by catch-ups
	Failures      int64 // failed connects, lost sessions and failed invalidations
}

// Listener passes every committed change of the products table to
// ListenerOptions.Invalidate: it holds one connection of its own (outside any pool)
// that LISTENs on the schema's channel, and calls Invalidate with the ids each wake-up
// brings, in commit order.
//
// A connection is lost when the server restarts or fails over, when a proxy or
// pg_terminate_backend ends it, or on a network fault. Notifications sent meanwhile
// are lost with it, so the Listener keeps a checkpoint: a snapshot
// (pg_current_snapshot) taken when it connected and advanced every
// CheckpointInterval once everything before it has been handled. After reconnecting
// (with backoff) and LISTENing again, it invalidates every product whose row was
// written, or deleted, by a transaction that the checkpoint does not see: all that
// changed while it was away, and some that it had already handled. A failed
// Invalidate (Redis down) stops the checkpoint and is followed by the same catch-up
// until one succeeds.
//
// At its first connect a Listener catches up from the checkpoint in
// ListenerOptions.Checkpoints, if any; without one, changes made while no Listener ran
// reach the caches by their TTL.
type Listener struct {
	cc *pgx.ConnConfig
	o  ListenerOptions

	connects, notifications, invalidated, catchUps, caughtUp, failures atomic.Int64

	// Only Run's goroutine touches these.
	checkpoint string // a snapshot: every change it sees is handled; "" before the first connect
	dirty      bool   // an invalidation failed since the checkpoint
	saved      string // the checkpoint last saved in Checkpoints
	schema     string // the products table's schema, found at connect
}

// NewListener returns a Listener for the database at url. It does no I/O; Run does.
func NewListener(url string, o ListenerOptions) (*Listener, error) {
	if o.Invalidate == nil {
		return nil, errors.New("postgres: listener: Invalidate is required")
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	if o.InvalidateTimeout <= 0 {
		o.InvalidateTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cc, err := ConnConfig(url, Options{ConnectTimeout: o.ConnectTimeout})
	if err != nil {
		return nil, err
	}
	return &Listener{cc: cc, o: o}, nil
}

// Stats returns the Listener's counts so far.
func (l *Listener) Stats() ListenerStats {
	return ListenerStats{
		Connects: l.connects.Load(), Notifications: l.notifications.Load(),
		Invalidated: l.invalidated.Load(), CatchUps: l.catchUps.Load(),
		CaughtUp: l.caughtUp.Load(), Failures: l.failures.Load(),
	}
}

// Run listens until ctx ends, reconnecting after every loss, and then returns nil
// having closed its connection. Run it once per Listener, on a goroutine of its own.
func (l *Listener) Run(ctx context.Context) error {
	backoff := l.o.MinBackoff
	for {
		started := time.Now()
		err := l.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.failures.Add(1)
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "product listener disconnected",
			slog.String("cause", string(CauseOf(err))), slog.String("error", err.Error()))
		if time.Since(started) > l.o.MaxBackoff {
			backoff = l.o.MinBackoff // it had been up a while: this is a new outage
		}
		// Jitter spreads the reconnects of many instances after a database restart.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, l.o.MaxBackoff)
	}
}

// session connects, LISTENs, catches up on any gap and handles notifications until
// the connection fails or ctx ends.
func (l *Listener) session(ctx context.Context) error {
	cc := l.cc.Copy()
	if l.o.Credentials != nil {
		if err := applyCredentials(ctx, cc, l.o.Credentials); err != nil {
			return wrap("listen: connect", "", err)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return wrap("listen: connect", "", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()

	var schema *string
	err = conn.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('products')`).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && schema == nil) {
		return &Error{Op: "listen", Cause: CauseSchema, Err: errors.New("no products table on the search path")}
	}
	if err != nil {
		return wrap("listen", "", err)
	}
	channel := *schema + ChannelSuffix
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return wrap("listen", "", err)
	}
	// Taken after LISTEN: every transaction this snapshot does not see commits after
	// it, so its notification reaches this session.
	snap, err := snapshot(ctx, conn)
	if err != nil {
		return err
	}
	l.connects.Add(1)
	l.o.Logger.LogAttrs(ctx, slog.LevelInfo, "product listener connected", slog.String("channel", channel))
	l.schema = *schema

	if l.checkpoint == "" {
		l.checkpoint = l.loadCheckpoint(ctx, conn, *schema)
	}
	switch err := l.catchUp(ctx, conn, l.checkpoint); {
	case errors.Is(err, errInvalidate):
		// Keep the checkpoint and retry at the next tick, listening meanwhile.
		l.dirty = true
	case err != nil:
		return err
	default:
		l.setCheckpoint(ctx, snap, *schema)
	}

	pending := "" // a snapshot that becomes the checkpoint at the next tick
	next := time.Now().Add(l.o.CheckpointInterval)
	for {
		waitCtx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && waitCtx.Err() != nil && n == nil:
			// The tick. (A notification that arrived with it is in n and handled
			// first.)
			pending, err = l.tick(ctx, conn, pending)
			if err != nil {
				return err
			}
			next = time.Now().Add(l.interval())
			continue
		case err != nil && n == nil:
			return wrap("listen", "", err)
		}
		l.handle(ctx, conn, n)
	}
}

// interval is the time to the next tick: sooner while an invalidation has failed.
func (l *Listener) interval() time.Duration {
	if l.dirty {
		return min(l.o.CheckpointInterval, time.Second)
	}
	return l.o.CheckpointInterval
}

// handle invalidates first's id and those of the notifications already received
// with it. A failure is logged and marks the Listener dirty: the next tick catches up.
func (l *Listener) handle(ctx context.Context, conn *pgx.Conn, first *pgconn.Notification) {
	ids := l.drain(conn, []string{first.Payload})
	if err := l.invalidate(ctx, ids); err != nil {
		l.failures.Add(1)
		l.dirty = true
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "product listener: invalidation failed; will catch up",
			slog.Int("ids", len(ids)), slog.String("error", err.Error()))
		return
	}
	l.invalidated.Add(int64(len(ids)))
}

// drain appends the payloads of the notifications conn has already received (without
// waiting for more) to ids, up to a batch, and returns them without duplicates or
// payloads that are not ids.
func (l *Listener) drain(conn *pgx.Conn, ids []string) []string {
	for len(ids) < 500 {
		// A done context makes WaitForNotification return what is buffered, or
		// nothing, without touching the connection.
		n, _ := conn.WaitForNotification(doneCtx)
		if n == nil {
			break
		}
		ids = append(ids, n.Payload)
	}
	l.notifications.Add(int64(len(ids)))
	seen := make(map[string]bool, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		// Anyone who may NOTIFY could send anything on the channel.
		if _, err := product.ParseID(id); err != nil && id != AllProducts {
			continue
		}
		out = append(out, id)
	}
	return out
}

var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// tick advances the checkpoint: pending, taken a tick ago, becomes it once everything
// received until now is handled, and a new snapshot becomes pending. While dirty, it
// catches up from the checkpoint instead. It returns the new pending snapshot; an error
// only when the connection failed.
func (l *Listener) tick(ctx context.Context, conn *pgx.Conn, pending string) (string, error) {
	now, err := snapshot(ctx, conn)
	if err != nil {
		return "", err
	}
	// Notifications that arrived with the query's answer.
	if n, _ := conn.WaitForNotification(doneCtx); n != nil {
		l.handle(ctx, conn, n)
	}
	if l.dirty {
		if err := l.catchUp(ctx, conn, l.checkpoint); err != nil {
			if errors.Is(err, errInvalidate) {
				return "", nil // still dirty: try again at the next tick
			}
			return "", err
		}
		l.setCheckpoint(ctx, now, l.schema)
		return "", nil
	}
	if pending != "" {
		l.setCheckpoint(ctx, pending, l.schema)
	}
	return now, nil
}

// setCheckpoint makes snap the checkpoint, clean, and saves it in the store, if any,
// stamped with the database and schema it belongs to.
func (l *Listener) setCheckpoint(ctx context.Context, snap, schema string) {
	l.checkpoint, l.dirty = snap, false
	if l.o.Checkpoints == nil || snap == l.saved {
		return
	}
	stamp := l.cc.Database + "/" + schema + "/" + snap
	if err := l.call(ctx, func(ctx context.Context) error { return l.o.Checkpoints.Save(ctx, stamp) }); err != nil {
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "product listener: cannot save the checkpoint", slog.String("error", err.Error()))
		return
	}
	l.saved = snap
}

// loadCheckpoint returns the stored checkpoint when it belongs to this database and
// schema and is a snapshot of this server's past; "" otherwise.
func (l *Listener) loadCheckpoint(ctx context.Context, conn *pgx.Conn, schema string) string {
	if l.o.Checkpoints == nil {
		return ""
	}
	var stamp string
	err := l.call(ctx, func(ctx context.Context) error {
		var err error
		stamp, err = l.o.Checkpoints.Load(ctx)
		return err
	})
	if err != nil {
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "product listener: cannot load the checkpoint", slog.String("error", err.Error()))
		return ""
	}
	prefix := l.cc.Database + "/" + schema + "/"
	snap, ok := strings.CutPrefix(stamp, prefix)
	if !ok || snap == "" {
		return ""
	}
	// A snapshot from this server's future (another server's, or a restored backup's)
	// would make the catch-up miss changes: it is not used.
	var past bool
	err = conn.QueryRow(ctx, `SELECT pg_snapshot_xmax($1::pg_snapshot) <= pg_snapshot_xmax(pg_current_snapshot())`, snap).Scan(&past)
	if err != nil || !past {
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "product listener: the saved checkpoint is not this server's; not catching up from it")
		return ""
	}
	l.o.Logger.LogAttrs(ctx, slog.LevelInfo, "product listener: catching up from the saved checkpoint")
	return snap
}

// errInvalidate marks a catch-up that read the changes but could not invalidate them.
var errInvalidate = errors.New("postgres: listen: invalidation failed")

// snapshot returns the server's current snapshot as text.
func snapshot(ctx context.Context, conn *pgx.Conn) (string, error) {
	var s string
	if err := conn.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&s); err != nil {
		return "", wrap("listen: snapshot", "", err)
	}
	return s, nil
}

// catchUp invalidates every product written or deleted by a transaction that the
// snapshot from does not see.
// An empty from (no checkpoint yet) catches up on nothing.
func (l *Listener) catchUp(ctx context.Context, conn *pgx.Conn, from string) error {
	if from == "" {
		return nil
	}
	l.catchUps.Add(1)
	// changed_xid >= xmin lets the index skip what every snapshot sees.
	rows, err := conn.Query(ctx, `
		SELECT id FROM products
		 WHERE changed_xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(changed_xid, $1::pg_snapshot)
		UNION
		SELECT id FROM product_tombstones
		 WHERE changed_xid >= pg_snapshot_xmin($1::pg_snapshot) AND NOT pg_visible_in_snapshot(changed_xid, $1::pg_snapshot)`, from)
	if err != nil {
		return wrap("listen: catch up", "", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return wrap("listen: catch up", "", err)
	}
	l.o.Logger.LogAttrs(ctx, slog.LevelInfo, "product listener caught up", slog.Int("ids", len(ids)))
	if err := l.invalidate(ctx, ids); err != nil {
		l.failures.Add(1)
		l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "product listener: invalidation failed; will catch up",
			slog.Int("ids", len(ids)), slog.String("error", err.Error()))
		return fmt.Errorf("%w: %w", errInvalidate, err)
	}
	l.caughtUp.Add(int64(len(ids)))
	return nil
}

// invalidate passes ids to Invalidate in batches, AllProducts to InvalidateAll.
func (l *Listener) invalidate(ctx context.Context, ids []string) error {
	const batch = 500
	var rest []string
	for _, id := range ids {
		if id == AllProducts {
			if l.o.InvalidateAll == nil {
				l.o.Logger.LogAttrs(ctx, slog.LevelWarn, "products table truncated; cached products expire by their TTL")
				continue
			}
			if err := l.call(ctx, func(ctx context.Context) error { return l.o.InvalidateAll(ctx) }); err != nil {
				return err
			}
			continue
		}
		rest = append(rest, id)
	}
	for len(rest) > 0 {
		n := min(batch, len(rest))
		part := rest[:n]
		if err := l.call(ctx, func(ctx context.Context) error { return l.o.Invalidate(ctx, part) }); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

func (l *Listener) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, l.o.InvalidateTimeout)
	defer cancel()
	return f(ctx)
}
