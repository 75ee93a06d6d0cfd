// Package config reads the functions' settings from the environment into one typed
// struct.
//
// Every setting has a default sized for AWS Lambda, where one execution environment
// serves one request at a time and a function has a short timeout. Settings whose best
// value depends on how the process runs (pool size, timeouts) default to 0 and are
// filled in by [Config.Resolve] for the [Mode]. A bad value stops start-up with one
// error that names every bad variable and never contains a value.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
)

// Stage names the deployment stage. StageProd guards cacheClear.
type Stage string

// The stages the code treats specially; any other lower-case name is allowed too.
const (
	StageDev  Stage = "dev"
	StageProd Stage = "prod"
)

// Config is every setting of the functions. Field comments give the environment
// variable, the default and special values.
type Config struct {
	Redis  Redis
	Cache  Cache
	L1     L1
	Source Source
	HTTP   HTTP
	// Database is the product database (PostgreSQL); see database.go.
	Database Database
	// Tracing turns OpenTelemetry tracing on; see tracing.go.
	Tracing Tracing

	// Stage is the deployment stage. In "prod", cacheClear refuses to run unless
	// CacheClearEnabled is set, and health shows details only with HealthToken.
	//
	// env: STAGE; default: dev
	Stage Stage `env:"STAGE" envDefault:"dev"`

	// LogLevel is the minimum level written: debug, info, warn or error.
	//
	// env: LOG_LEVEL; default: info
	LogLevel slog.Level `env:"LOG_LEVEL" envDefault:"info"`

	// LogFlushInterval is, in the HTTP mode, the longest a log line waits in memory:
	// lines are written in batches (every interval, or as 32 KiB gather), not with a
	// system call each, and the rest at shutdown. A crash that skips the shutdown
	// loses at most this much of the log. 0 writes every line at once. Under Lambda
	// every line is written at once whatever this says: the environment may be frozen
	// or ended as soon as a response is sent.
	//
	// env: LOG_FLUSH_INTERVAL; default: 100ms; at most 10s
	LogFlushInterval time.Duration `env:"LOG_FLUSH_INTERVAL" envDefault:"100ms"`

	// CacheClearToken is the bearer token cacheClear requires. Under Lambda a token is
	// always required: with none set cacheClear refuses every call. Only the local HTTP
	// run may leave it empty, which leaves cacheClear open.
	//
	// env: CACHE_CLEAR_TOKEN; default: none
	CacheClearToken Secret `env:"CACHE_CLEAR_TOKEN"`

	// CacheClearTokenFile is a file holding CacheClearToken instead (a secret that
	// OpenFaaS, Docker or Kubernetes mounts as a file). See Redis.PasswordFile for how
	// it is read.
	//
	// env: CACHE_CLEAR_TOKEN_FILE; default: none
	CacheClearTokenFile string `env:"CACHE_CLEAR_TOKEN_FILE"`

	// CacheClearEnabled lets cacheClear run when Stage is prod.
	//
	// env: CACHE_CLEAR_ENABLED; default: false
	CacheClearEnabled bool `env:"CACHE_CLEAR_ENABLED" envDefault:"false"`

	// HealthToken is the bearer token that unlocks health's details (server version,
	// memory, keyspace, pool) outside the dev stage. Empty: details only in dev.
	//
	// env: HEALTH_TOKEN; default: none
	HealthToken Secret `env:"HEALTH_TOKEN"`

	// HealthTokenFile is a file holding HealthToken instead. See Redis.PasswordFile for
	// how it is read.
	//
	// env: HEALTH_TOKEN_FILE; default: none
	HealthTokenFile string `env:"HEALTH_TOKEN_FILE"`

	// Mode is how the process runs; not read from the environment but detected by
	// [Load] (see [DetectMode]).
	Mode Mode `env:"-"`
}

// Redis is the connection to Redis.
type Redis struct {
	// URL is the Redis endpoint: redis://[user[:password]@]host[:port][/db] or
	// rediss:// for TLS, in go-redis's URL grammar (redis.ParseURL); the port defaults
	// to 6379 and db to 0. Of go-redis's query options only protocol (2 or 3; default
	// 3), client_name and db are accepted. The others (dial_timeout, pool_size,
	// skip_verify, ...) stop start-up with an error naming the REDIS_* variable that
	// sets the same thing, so there is one place for each setting. Empty means "not
	// configured": a deployed function then fails at start-up, and the local run starts
	// an embedded Redis instead.
	//
	// env: REDIS_URL; default: none
	URL Secret `env:"REDIS_URL"`

	// Username is the ACL user; overrides the URL's.
	//
	// env: REDIS_USERNAME; default: the URL's, else none (the default user)
	Username string `env:"REDIS_USERNAME"`

	// Password is the AUTH password; overrides the URL's so the secret can come from
	// elsewhere (a secret store) than the endpoint.
	//
	// env: REDIS_PASSWORD; default: the URL's, else none
	Password Secret `env:"REDIS_PASSWORD"`

	// PasswordFile is a file holding the AUTH password instead: a secret that OpenFaaS
	// (/var/openfaas/secrets/<name>), Docker or Kubernetes mounts as a file, so the
	// password is not in the environment. It is read once, by Parse; one trailing line
	// break (\n or \r\n) is dropped. It cannot be combined with REDIS_PASSWORD or
	// REDIS_PASSWORD_SECRET_ARN. An unreadable, empty or over-64-KiB file stops
	// start-up with an error that names the variable, never the file's content.
	//
	// env: REDIS_PASSWORD_FILE; default: none
	PasswordFile string `env:"REDIS_PASSWORD_FILE"`

	// PasswordSecretARN is the full ARN of an AWS Secrets Manager secret that holds the
	// AUTH password, so the password is not in the function's environment, which anyone
	// with lambda:GetFunctionConfiguration can read. The secret is read when the first
	// connection is made (never at start-up) and kept for the life of the process; a
	// failed read is not kept, and the next connection tries again. One read is bounded
	// by a fixed 2 s (a command waits at most that, or until its own deadline).
	// Its value is either the password itself or a JSON object with a "password" key
	// and an optional "username" (the form of RDS and ElastiCache rotation secrets),
	// whose username then replaces the configured one. It overrides the URL's password;
	// it cannot be combined with REDIS_PASSWORD. The function's role needs
	// secretsmanager:GetSecretValue on this ARN (and kms:Decrypt for a customer key).
	//
	// env: REDIS_PASSWORD_SECRET_ARN; default: none (the password comes from
	// REDIS_PASSWORD or the URL)
	PasswordSecretARN string `env:"REDIS_PASSWORD_SECRET_ARN"`

	// TLS forces TLS on; rediss:// turns it on too (ElastiCache in-transit encryption).
	//
	// env: REDIS_TLS; default: false
	TLS bool `env:"REDIS_TLS" envDefault:"false"`

	// TLSCAFile is a PEM bundle of CAs to trust instead of the system's, for a private
	// CA. ElastiCache uses public CAs that the system pool already trusts.
	//
	// env: REDIS_TLS_CA_FILE; default: none (system roots)
	TLSCAFile string `env:"REDIS_TLS_CA_FILE"`

	// TLSServerName overrides the name checked in the server's certificate.
	//
	// env: REDIS_TLS_SERVER_NAME; default: the URL's host
	TLSServerName string `env:"REDIS_TLS_SERVER_NAME"`

	// TLSInsecureSkipVerify turns off certificate checks. For local experiments only;
	// refused when Stage is prod.
	//
	// env: REDIS_TLS_INSECURE_SKIP_VERIFY; default: false
	TLSInsecureSkipVerify bool `env:"REDIS_TLS_INSECURE_SKIP_VERIFY" envDefault:"false"`

	// Cluster selects the Redis Cluster client (ElastiCache cluster mode enabled). The
	// URL's host is then a seed; ClusterAddrs adds more.
	//
	// env: REDIS_CLUSTER; default: false
	Cluster bool `env:"REDIS_CLUSTER" envDefault:"false"`

	// ClusterAddrs are extra seed host:port addresses for cluster mode.
	//
	// env: REDIS_CLUSTER_ADDRS (comma separated); default: none
	ClusterAddrs []string `env:"REDIS_CLUSTER_ADDRS"`

	// DialTimeout bounds one TCP (and TLS) connect. go-redis's 5 s would spend a whole
	// function timeout on one unreachable endpoint.
	//
	// env: REDIS_DIAL_TIMEOUT; default: 500ms under Lambda, 1s in HTTP mode
	DialTimeout time.Duration `env:"REDIS_DIAL_TIMEOUT"`

	// DialRetries is how many times a failed connect is tried before giving up. go-redis
	// tries 5 times with backoff; the circuit breaker makes retries here pointless.
	//
	// env: REDIS_DIAL_RETRIES; default: 1 (no retry)
	DialRetries int `env:"REDIS_DIAL_RETRIES" envDefault:"1"`

	// ReadTimeout bounds waiting for one reply. A GET on a healthy server answers in
	// well under 1 ms in the same AZ.
	//
	// env: REDIS_READ_TIMEOUT; default: 250ms under Lambda, 500ms in HTTP mode
	ReadTimeout time.Duration `env:"REDIS_READ_TIMEOUT"`

	// WriteTimeout bounds writing one command.
	//
	// env: REDIS_WRITE_TIMEOUT; default: same as ReadTimeout
	WriteTimeout time.Duration `env:"REDIS_WRITE_TIMEOUT"`

	// OpTimeout bounds one cache operation as a whole, retries included: the most a
	// request waits on Redis before it falls back to the source.
	//
	// env: REDIS_OP_TIMEOUT; default: 2×ReadTimeout + DialTimeout
	OpTimeout time.Duration `env:"REDIS_OP_TIMEOUT"`

	// MaxRetries is how many times a command that failed on its connection is retried on
	// another. One retry lets a request survive a connection the server or a NAT dropped
	// while the environment was frozen (go-redis does not health-check pooled TLS
	// connections). -1 disables retries.
	//
	// env: REDIS_MAX_RETRIES; default: 1
	MaxRetries int `env:"REDIS_MAX_RETRIES" envDefault:"1"`

	// PoolSize is the most connections per Redis node. Lambda runs one request at a time
	// per environment and total connections are concurrency × pool size, so a tiny pool
	// there; go-redis's 10×GOMAXPROCS suits neither mode.
	//
	// env: REDIS_POOL_SIZE; default: 2 under Lambda, 8×GOMAXPROCS (at least 16) in HTTP mode
	PoolSize int `env:"REDIS_POOL_SIZE"`

	// ConnMaxIdleTime closes a pooled connection unused for this long instead of reusing
	// it. Kept under the 350 s idle timeout of AWS NAT gateways and NLBs, so a connection
	// that sat through a long freeze is replaced rather than found dead.
	//
	// env: REDIS_CONN_MAX_IDLE_TIME; default: 4m
	ConnMaxIdleTime time.Duration `env:"REDIS_CONN_MAX_IDLE_TIME" envDefault:"4m"`

	// BreakerFailures is how many consecutive connection faults or timeouts open the
	// circuit breaker; replies from a working server (OOM, WRONGTYPE) never count.
	//
	// env: REDIS_BREAKER_FAILURES; default: 3
	BreakerFailures int `env:"REDIS_BREAKER_FAILURES" envDefault:"3"`

	// BreakerCooldown is how long an open breaker skips Redis before one probe is let
	// through.
	//
	// env: REDIS_BREAKER_COOLDOWN; default: 5s
	BreakerCooldown time.Duration `env:"REDIS_BREAKER_COOLDOWN" envDefault:"5s"`
}

// Cache is how values are cached.
type Cache struct {
	// KeyPrefix starts every cache entry this application writes; cacheClear touches
	// only keys under it. Its last segment must be the stage ("…:<STAGE>:"), so an
	// instance's prefix is never a parent of another stage's and its "scope: all"
	// never reaches another stage's keys. It contains no glob characters, braces or
	// spaces. The application's figures (package tally) live beside it, not under it:
	// see api.TallyKey.
	//
	// env: CACHE_KEY_PREFIX; default: store:<STAGE>: (store:dev: when STAGE is unset)
	KeyPrefix string `env:"CACHE_KEY_PREFIX"`

	// ProductTTL is how long a product is fresh in Redis; the stale windows below keep
	// it there longer.
	//
	// env: PRODUCT_CACHE_TTL; default: 10m
	ProductTTL time.Duration `env:"PRODUCT_CACHE_TTL" envDefault:"10m"`

	// TTLJitter spreads expiries: each TTL is shortened by a random fraction up to this,
	// so keys written together do not expire together. 0 disables.
	//
	// env: CACHE_TTL_JITTER; default: 0.1
	TTLJitter float64 `env:"CACHE_TTL_JITTER" envDefault:"0.1"`

	// NegativeTTL is how long "not found" is remembered. 0 disables negative caching.
	//
	// env: CACHE_NEGATIVE_TTL; default: 30s
	NegativeTTL time.Duration `env:"CACHE_NEGATIVE_TTL" envDefault:"30s"`

	// LeaseTTL is how long one caller holds the fill lease of a missing key while it
	// fetches; if it dies, another caller takes over after this.
	//
	// env: CACHE_LEASE_TTL; default: 2s
	LeaseTTL time.Duration `env:"CACHE_LEASE_TTL" envDefault:"2s"`

	// LeaseWait is the longest a caller waits for another's fill before it fetches
	// itself. 0 disables the lease (every missing caller fetches).
	//
	// env: CACHE_LEASE_WAIT; default: 3s
	LeaseWait time.Duration `env:"CACHE_LEASE_WAIT" envDefault:"3s"`

	// StaleWhileRevalidate is how long after ProductTTL a product is still served, with
	// X-Cache: STALE, while one refresh of it runs: in the background in the HTTP mode;
	// under Lambda by the one invocation that takes the refresh lease, before it
	// answers. 0 makes an entry past its TTL a miss.
	//
	// env: CACHE_STALE_WHILE_REVALIDATE; default: 1m
	StaleWhileRevalidate time.Duration `env:"CACHE_STALE_WHILE_REVALIDATE" envDefault:"1m"`

	// StaleIfError is how long after that window a product is kept to be served, with
	// X-Cache: STALE, when the product source fails; inside it a reader refreshes
	// before answering. It lengthens how long Redis keeps each entry
	// (ProductTTL + StaleWhileRevalidate + StaleIfError). 0 disables.
	//
	// env: CACHE_STALE_IF_ERROR; default: 30m
	StaleIfError time.Duration `env:"CACHE_STALE_IF_ERROR" envDefault:"30m"`

	// EarlyRefresh is the XFetch β: a fresh product is refreshed before its TTL ends
	// with a chance that rises near the end, in proportion to how long its fetch took,
	// so a hot product never expires under its readers. 0 disables; larger refreshes
	// earlier.
	//
	// env: CACHE_EARLY_REFRESH; default: 1
	EarlyRefresh float64 `env:"CACHE_EARLY_REFRESH" envDefault:"1"`

	// RefreshBackoff is how long no refresh of a product is tried after one failed,
	// doubling with each failure in a row up to 32 times: a source that is down is
	// asked about each product at most once per step.
	//
	// env: CACHE_REFRESH_BACKOFF; default: 1s
	RefreshBackoff time.Duration `env:"CACHE_REFRESH_BACKOFF" envDefault:"1s"`

	// CacheControl is the Cache-Control header sent with products, separate from the
	// Redis TTL: cacheClear cannot reach copies in browsers or CDNs, so keep it short.
	//
	// env: CACHE_CONTROL; default: no-cache (revalidate with the ETag every time)
	CacheControl string `env:"CACHE_CONTROL" envDefault:"no-cache"`
}

// Source is where products come from.
type Source struct {
	// BaseURL is an upstream product service: GET URL/{id} returns a product as JSON (404
	// for unknown ids). Empty: the sample catalog shipped with the code.
	//
	// env: PRODUCT_SOURCE_URL; default: none
	BaseURL string `env:"PRODUCT_SOURCE_URL"`

	// Timeout bounds one call to the upstream product service.
	//
	// env: PRODUCT_SOURCE_TIMEOUT; default: 2s
	Timeout time.Duration `env:"PRODUCT_SOURCE_TIMEOUT" envDefault:"2s"`

	// Latency is added to every sample-catalog read, to stand for a real database in
	// demos and load tests. 0 adds none.
	//
	// env: PRODUCT_SOURCE_LATENCY; default: 0
	Latency time.Duration `env:"PRODUCT_SOURCE_LATENCY" envDefault:"0"`
}

// HTTP is the HTTP side of the functions.
type HTTP struct {
	// Port is where the HTTP mode listens.
	//
	// env: PORT; default: 8080
	Port int `env:"PORT" envDefault:"8080"`

	// CORSOrigins are the origins allowed to call the API from a browser; "*" allows any.
	//
	// env: CORS_ALLOW_ORIGINS (comma separated); default: *
	CORSOrigins []string `env:"CORS_ALLOW_ORIGINS" envDefault:"*"`

	// MetricsNamespace is the CloudWatch namespace of the per-request metrics.
	//
	// env: METRICS_NAMESPACE; default: StoreAPI
	MetricsNamespace string `env:"METRICS_NAMESPACE" envDefault:"StoreAPI"`
}

// Load reads the configuration from the process environment for the detected mode.
func Load() (Config, error) {
	return Parse(env.ToMap(os.Environ()), DetectMode())
}

// Parse reads the configuration from environ for mode, fills in the mode's defaults and
// validates it. The error names every bad variable and contains no value.
func Parse(environ map[string]string, mode Mode) (Config, error) {
	var c Config
	var bad []string
	err := env.ParseWithOptions(&c, env.Options{Environment: environ})
	var agg env.AggregateError
	switch {
	case errors.As(err, &agg):
		keys := fieldKeys()
		for _, e := range agg.Errors {
			bad = append(bad, describe(e, keys))
		}
	case err != nil:
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c.Mode = mode
	bad = append(bad, c.readSecretFiles()...)
	c.Resolve()
	bad = append(bad, c.validate()...)
	if len(bad) > 0 {
		slices.Sort(bad)
		return Config{}, fmt.Errorf("config: invalid environment: %s", strings.Join(slices.Compact(bad), "; "))
	}
	return c, nil
}
