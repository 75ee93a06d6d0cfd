// Package redisclient owns the process-wide go-redis client that every warm invocation
// shares. Its errors are classified by package fault.
//
// The client is built on first use, never at package init or Lambda INIT, and building
// it does no I/O: go-redis dials on the first command. Concurrent first use builds
// exactly one client. A failed dial is not remembered: go-redis's pool would answer
// with the last dial error until a background probe succeeds, so a client whose dial
// failed is replaced and the next call dials again. After Close the next use builds a
// fresh client.
package redisclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Options turns the Redis settings into go-redis options. It reads the CA file named by
// the config (local file I/O, no network) so a bad bundle stops start-up, not a request.
func Options(c config.Redis) (*redis.UniversalOptions, error) {
	if c.URL == "" {
		return nil, errors.New("redisclient: REDIS_URL is not set")
	}
	ep, err := c.Endpoint()
	if err != nil {
		return nil, fmt.Errorf("redisclient: REDIS_URL: %w", err)
	}
	o := &redis.UniversalOptions{
		Addrs:         append([]string{ep.Addr}, c.ClusterAddrs...),
		IsClusterMode: c.Cluster,
		Username:      ep.Username,
		Password:      string(ep.Password),
		DB:            ep.DB,
		Protocol:      ep.Protocol,
		ClientName:    ep.ClientName,

		DialTimeout:     c.DialTimeout,
		DialerRetries:   c.DialRetries,
		ReadTimeout:     c.ReadTimeout,
		WriteTimeout:    c.WriteTimeout,
		PoolTimeout:     c.ReadTimeout,
		MaxRetries:      c.MaxRetries,
		MinRetryBackoff: 8 * time.Millisecond,
		MaxRetryBackoff: 64 * time.Millisecond,
		PoolSize:        c.PoolSize,
		MaxActiveConns:  c.PoolSize,
		ConnMaxIdleTime: c.ConnMaxIdleTime,
		// Deadlines from the request context bound every command, so a command never
		// outlives the function's own timeout.
		ContextTimeoutEnabled: true,
		// Pipelines share the main pool: a second pool of 10 would multiply connections
		// per Lambda environment.
		PipelinePoolSize: -1,
		// One round trip less per new connection (no CLIENT SETINFO, no maintenance
		// notification handshake, which ElastiCache does not support anyway).
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if c.PasswordSecretARN != "" {
		creds, err := secretCredentials(c.PasswordSecretARN, ep.Username)
		if err != nil {
			return nil, fmt.Errorf("redisclient: REDIS_PASSWORD_SECRET_ARN: %w", err)
		}
		o.CredentialsProviderContext = creds
		o.Password = ""
	}
	if ep.DB != 0 && c.Cluster {
		return nil, errors.New("redisclient: REDIS_URL: cluster mode has only database 0")
	}
	if ep.TLS || c.TLSCAFile != "" || c.TLSServerName != "" {
		t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ep.Host}
		if c.TLSServerName != "" {
			t.ServerName = c.TLSServerName
		}
		if c.TLSCAFile != "" {
			pem, err := os.ReadFile(c.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("redisclient: REDIS_TLS_CA_FILE: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("redisclient: REDIS_TLS_CA_FILE: no PEM certificate in the file")
			}
			t.RootCAs = pool
		}
		t.InsecureSkipVerify = c.TLSInsecureSkipVerify
		o.TLSConfig = t
	}
	return o, nil
}

// Lazy holds one go-redis client, built on first use from fixed options.
type Lazy struct {
	opts *redis.UniversalOptions

	cur    atomic.Pointer[entry]
	mu     sync.Mutex // serialises builds, retirements and Close
	builds atomic.Int64
	dials  atomic.Int64
	// retired clients are closed after a grace period so commands already in flight
	// on them finish; Close closes them at once.
	retired map[*entry]*time.Timer
	// closeRetired closes a replaced client at once (NewTrackingLazy).
	closeRetired bool
	// onBuild runs on each client built (OnBuild).
	onBuild []func(redis.UniversalClient)
}

type entry struct {
	c     redis.UniversalClient
	stale atomic.Bool
}

// retireGrace lets commands in flight on a replaced client finish before it closes.
const retireGrace = 5 * time.Second

// NewLazy returns a holder that builds its client from opts on first use. It does no
// I/O and keeps opts (do not change them afterwards).
func NewLazy(opts *redis.UniversalOptions) *Lazy {
	bridgeOnce.Do(func() { redis.SetLogger(slogBridge{}) })
	return &Lazy{opts: opts, retired: map[*entry]*time.Timer{}}
}

// Client returns the current client, building it if there is none (no I/O). Safe for
// concurrent use: concurrent first calls build exactly one client.
func (l *Lazy) Client() redis.UniversalClient {
	if e := l.cur.Load(); e != nil && !e.stale.Load() {
		return e.c
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.cur.Load()
	if e != nil && !e.stale.Load() {
		return e.c
	}
	if e != nil {
		l.retireLocked(e)
	}
	e = &entry{}
	e.c = redis.NewUniversalClient(l.opts)
	if cc, ok := e.c.(*redis.ClusterClient); ok {
		cc.AddHook(clusterReload{c: cc})
	}
	if !l.opts.IsClusterMode && len(l.opts.Addrs) <= 1 {
		// A cluster client recovers from dead nodes by reloading its slot map
		// (clusterReload), so only a single-node client is replaced after a failed dial.
		e.c.AddHook(dialWatch{e: e, dials: &l.dials})
	}
	for _, f := range l.onBuild {
		f(e.c)
	}
	l.cur.Store(e)
	l.builds.Add(1)
	return e.c
}

// OnBuild makes f run on every client the holder builds from now on, before the
// client is handed out, and on the current one if there is one: it is how hooks
// (tracing) reach a client that is built, and rebuilt, lazily. f runs with the holder
// locked: it must not call the holder.
func (l *Lazy) OnBuild(f func(redis.UniversalClient)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onBuild = append(l.onBuild, f)
	if e := l.cur.Load(); e != nil {
		f(e.c)
	}
}

func (l *Lazy) retireLocked(e *entry) {
	if l.closeRetired {
		_ = e.c.Close()
		return
	}
	l.retired[e] = time.AfterFunc(retireGrace, func() {
		l.mu.Lock()
		_, ok := l.retired[e]
		delete(l.retired, e)
		l.mu.Unlock()
		if ok {
			_ = e.c.Close()
		}
	})
}

// Built reports whether a usable client exists, without I/O.
func (l *Lazy) Built() bool {
	e := l.cur.Load()
	return e != nil && !e.stale.Load()
}

// Builds is how many clients this holder has built (a test and health figure).
func (l *Lazy) Builds() int64 { return l.builds.Load() }

// Dials is how many connections the current and past clients tried to open.
func (l *Lazy) Dials() int64 { return l.dials.Load() }

// PoolStats returns the current client's pool statistics, or nil when none is built.
func (l *Lazy) PoolStats() *redis.PoolStats {
	e := l.cur.Load()
	if e == nil {
		return nil
	}
	return e.c.PoolStats()
}

// Close closes the current client and any retired ones. The next Client call builds a
// fresh client.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	if e := l.cur.Swap(nil); e != nil {
		errs = append(errs, e.c.Close())
	}
	for e, t := range l.retired {
		if t.Stop() {
			errs = append(errs, e.c.Close())
		}
		delete(l.retired, e)
	}
	return errors.Join(errs...)
}

// dialWatch marks its client stale when a dial fails, so the next Client call replaces
// it instead of letting the pool replay the dial error.
type dialWatch struct {
	e     *entry
	dials *atomic.Int64
}

func (w dialWatch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.dials.Add(1)
		c, err := next(ctx, network, addr)
		if err != nil {
			w.e.stale.Store(true)
		}
		return c, err
	}
}

func (dialWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (dialWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

var (
	sharedMu sync.Mutex
	shared   *Lazy
)

// Shared returns the process-wide holder, created on the first call from c; later calls
// return the same holder whatever c they pass. It does no I/O: the client itself is
// built on first use and dials on its first command.
func Shared(c config.Redis) (*Lazy, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		return shared, nil
	}
	o, err := Options(c)
	if err != nil {
		return nil, err
	}
	shared = NewLazy(o)
	return shared, nil
}

// slogBridge sends go-redis's own log lines (dial failures, pool events) to slog at
// debug level: during an outage they repeat on every call, and the handler already
// logs the classified failure once per request.
type slogBridge struct{}

func (slogBridge) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

var bridgeOnce sync.Once
