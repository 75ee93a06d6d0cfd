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
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"
)

// Mode is how the process serves requests.
type Mode int

const (
	// ModeLambda is the AWS Lambda runtime (AWS_LAMBDA_RUNTIME_API is set): one request
	// at a time per environment, frozen between invocations.
	ModeLambda Mode = iota
	// ModeHTTP is a long-lived HTTP server (OpenFaaS of-watchdog http mode, a laptop):
	// many concurrent requests in one process.
	ModeHTTP
)

// String returns "lambda" or "http".
func (m Mode) String() string {
	if m == ModeHTTP {
		return "http"
	}
	return "lambda"
}

// DetectMode reports ModeLambda when the Lambda runtime API is present and ModeHTTP
// otherwise.
func DetectMode() Mode {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		return ModeLambda
	}
	return ModeHTTP
}

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
	Source Source
	HTTP   HTTP

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
	// URL is the Redis endpoint: redis://[user[:password]@]host:port[/db] or rediss://
	// for TLS. Empty means "not configured": a deployed function then fails at start-up,
	// and the local run starts an embedded Redis instead.
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
	// KeyPrefix starts every key this application writes; cacheClear touches only keys
	// under it. Must end in ':' and contain no glob characters or braces.
	//
	// env: CACHE_KEY_PREFIX; default: store:
	KeyPrefix string `env:"CACHE_KEY_PREFIX" envDefault:"store:"`

	// ProductTTL is how long a product stays in Redis.
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

// maxSecretFile bounds what a *_FILE setting reads: a password or token, not a
// file that was named by mistake.
const maxSecretFile = 64 << 10

// readSecretFiles sets each secret whose *_FILE setting names a file from that
// file, and returns the problems, naming variables only.
func (c *Config) readSecretFiles() []string {
	var bad []string
	files := []struct {
		key, path string
		dst       *Secret
		conflicts map[string]bool // the other ways to set the same secret, by name
	}{
		{"REDIS_PASSWORD_FILE", c.Redis.PasswordFile, &c.Redis.Password, map[string]bool{
			"REDIS_PASSWORD": c.Redis.Password != "", "REDIS_PASSWORD_SECRET_ARN": c.Redis.PasswordSecretARN != ""}},
		{"CACHE_CLEAR_TOKEN_FILE", c.CacheClearTokenFile, &c.CacheClearToken, map[string]bool{
			"CACHE_CLEAR_TOKEN": c.CacheClearToken != ""}},
		{"HEALTH_TOKEN_FILE", c.HealthTokenFile, &c.HealthToken, map[string]bool{
			"HEALTH_TOKEN": c.HealthToken != ""}},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		conflict := false
		for _, other := range slices.Sorted(maps.Keys(f.conflicts)) {
			if f.conflicts[other] {
				bad = append(bad, f.key+": cannot be combined with "+other+"; set only one")
				conflict = true
			}
		}
		if conflict {
			continue
		}
		v, why := readSecretFile(f.path)
		if why != "" {
			bad = append(bad, f.key+": "+why)
			continue
		}
		*f.dst = Secret(v)
	}
	return bad
}

// readSecretFile returns the content of the file at path less one trailing line
// break, or why it cannot be used. The reason never includes the content.
func readSecretFile(path string) (string, string) {
	fh, err := os.Open(path)
	if err != nil {
		return "", "file not readable"
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSecretFile+1))
	switch {
	case err != nil:
		return "", "file not readable"
	case len(b) > maxSecretFile:
		return "", "file larger than 64 KiB"
	}
	v := string(b)
	if strings.HasSuffix(v, "\r\n") {
		v = v[:len(v)-2]
	} else {
		v = strings.TrimSuffix(v, "\n")
	}
	if v == "" {
		return "", "file is empty"
	}
	return v, ""
}

// Resolve fills the settings left at 0 with the defaults of c.Mode.
func (c *Config) Resolve() {
	r := &c.Redis
	lambda := c.Mode == ModeLambda
	if r.DialTimeout == 0 {
		r.DialTimeout = pick(lambda, 500*time.Millisecond, time.Second)
	}
	if r.ReadTimeout == 0 {
		r.ReadTimeout = pick(lambda, 250*time.Millisecond, 500*time.Millisecond)
	}
	if r.WriteTimeout == 0 {
		r.WriteTimeout = r.ReadTimeout
	}
	if r.OpTimeout == 0 {
		r.OpTimeout = 2*r.ReadTimeout + r.DialTimeout
	}
	if r.PoolSize == 0 {
		r.PoolSize = pick(lambda, 2, max(16, 8*runtime.GOMAXPROCS(0)))
	}
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

func (c *Config) validate() []string {
	var bad []string
	add := func(key, why string) { bad = append(bad, key+": "+why) }
	r := c.Redis
	if r.URL != "" {
		if _, err := r.Endpoint(); err != nil {
			add("REDIS_URL", err.Error())
		}
	}
	if r.PasswordSecretARN != "" {
		if r.Password != "" {
			add("REDIS_PASSWORD", "cannot be combined with REDIS_PASSWORD_SECRET_ARN; set only one")
			add("REDIS_PASSWORD_SECRET_ARN", "cannot be combined with REDIS_PASSWORD; set only one")
		}
		if err := CheckSecretARN(r.PasswordSecretARN); err != nil {
			add("REDIS_PASSWORD_SECRET_ARN", err.Error())
		}
	}
	for _, a := range r.ClusterAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add("REDIS_CLUSTER_ADDRS", "want host:port entries")
			break
		}
	}
	positive := []struct {
		key string
		d   time.Duration
	}{
		{"REDIS_DIAL_TIMEOUT", r.DialTimeout},
		{"REDIS_READ_TIMEOUT", r.ReadTimeout},
		{"REDIS_WRITE_TIMEOUT", r.WriteTimeout},
		{"REDIS_OP_TIMEOUT", r.OpTimeout},
		{"REDIS_BREAKER_COOLDOWN", r.BreakerCooldown},
		{"PRODUCT_CACHE_TTL", c.Cache.ProductTTL},
		{"CACHE_LEASE_TTL", c.Cache.LeaseTTL},
		{"PRODUCT_SOURCE_TIMEOUT", c.Source.Timeout},
	}
	for _, p := range positive {
		if p.d <= 0 {
			add(p.key, "must be a positive duration")
		}
	}
	nonNegative := []struct {
		key string
		d   time.Duration
	}{
		{"REDIS_CONN_MAX_IDLE_TIME", r.ConnMaxIdleTime},
		{"CACHE_NEGATIVE_TTL", c.Cache.NegativeTTL},
		{"CACHE_LEASE_WAIT", c.Cache.LeaseWait},
		{"PRODUCT_SOURCE_LATENCY", c.Source.Latency},
	}
	for _, p := range nonNegative {
		if p.d < 0 {
			add(p.key, "must not be negative")
		}
	}
	if c.LogFlushInterval < 0 || c.LogFlushInterval > 10*time.Second {
		add("LOG_FLUSH_INTERVAL", "must be between 0 and 10s")
	}
	if r.DialRetries < 1 {
		add("REDIS_DIAL_RETRIES", "must be at least 1")
	}
	if r.MaxRetries < -1 {
		add("REDIS_MAX_RETRIES", "must be -1 (no retries) or more")
	}
	if r.PoolSize < 1 {
		add("REDIS_POOL_SIZE", "must be at least 1")
	}
	if r.BreakerFailures < 1 {
		add("REDIS_BREAKER_FAILURES", "must be at least 1")
	}
	if r.TLSCAFile != "" {
		if _, err := os.Stat(r.TLSCAFile); err != nil {
			add("REDIS_TLS_CA_FILE", "file not readable")
		}
	}
	if r.TLSInsecureSkipVerify && c.Stage == StageProd {
		add("REDIS_TLS_INSECURE_SKIP_VERIFY", "not allowed when STAGE=prod")
	}
	if err := CheckPrefix(c.Cache.KeyPrefix); err != nil {
		add("CACHE_KEY_PREFIX", err.Error())
	}
	if j := c.Cache.TTLJitter; j < 0 || j >= 1 {
		add("CACHE_TTL_JITTER", "must be in [0, 1)")
	}
	if c.Source.BaseURL != "" {
		u, err := url.Parse(c.Source.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("PRODUCT_SOURCE_URL", "want an http:// or https:// URL")
		}
	}
	if !validStage(c.Stage) {
		add("STAGE", "want a lower-case name such as dev, staging or prod")
	}
	if c.HTTP.Port < 1 || c.HTTP.Port > 65535 {
		add("PORT", "want a TCP port")
	}
	if c.HTTP.MetricsNamespace == "" {
		add("METRICS_NAMESPACE", "must not be empty")
	}
	return bad
}

// CheckPrefix reports whether p can be a key prefix: non-empty, ending in ':', and free
// of glob characters and braces (which would change SCAN patterns and cluster slots).
func CheckPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("must not be empty")
	case !strings.HasSuffix(p, ":"):
		return errors.New("must end with ':'")
	case strings.ContainsAny(p, "*?[]{}\\ \t\r\n"):
		return errors.New("must not contain glob characters, braces or spaces")
	}
	return nil
}

// CheckSecretARN reports whether arn has the form of a Secrets Manager secret's ARN:
// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME. A name alone is refused: the
// role's policy grants access by ARN, and the ARN names the secret's region. The error
// does not quote arn.
func CheckSecretARN(arn string) error {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") ||
		parts[2] != "secretsmanager" || parts[3] == "" || parts[4] == "" || parts[5] != "secret" ||
		parts[6] == "" || strings.ContainsAny(arn, " \t\r\n") {
		return errors.New("want the full ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
	}
	return nil
}

func validStage(s Stage) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// describe turns one error of caarlos0/env into "VAR: why", without the value: a parse
// error's message quotes the value, which may be a secret.
func describe(err error, keys map[string]string) string {
	var pe env.ParseError
	if errors.As(err, &pe) {
		key := keys[pe.Name]
		if key == "" {
			key = pe.Name
		}
		return key + ": " + kindOf(pe.Type)
	}
	var unset env.EnvVarIsNotSetError
	if errors.As(err, &unset) {
		return unset.Key + ": required"
	}
	var empty env.EmptyEnvVarError
	if errors.As(err, &empty) {
		return empty.Key + ": must not be empty"
	}
	return "invalid setting"
}

func kindOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "not a duration (e.g. 250ms, 5s, 10m)"
	case t == reflect.TypeFor[slog.Level]():
		return "not a log level (debug, info, warn, error)"
	case t.Kind() == reflect.Bool:
		return "not a boolean (true or false)"
	case t.Kind() == reflect.Int:
		return "not an integer"
	case t.Kind() == reflect.Float64:
		return "not a number"
	}
	return "not a valid " + t.String()
}

// fieldKeys maps each Go field name to its environment variable. caarlos0/env names
// only the field in a parse error, so field names are kept unique across the nested
// structs (TestVariablesAreUniqueAndComplete counts them).
func fieldKeys() map[string]string {
	keys := map[string]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			if tag := f.Tag.Get("env"); tag != "" && tag != "-" {
				keys[f.Name] = strings.Split(tag, ",")[0]
			} else if f.Type.Kind() == reflect.Struct {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[Config]())
	return keys
}

// Endpoint is the parsed REDIS_URL.
type Endpoint struct {
	Addr     string
	Username string
	Password Secret
	DB       int
	TLS      bool
	Host     string
}

// Endpoint parses REDIS_URL. Its errors never quote the URL, which may hold a password.
func (r Redis) Endpoint() (Endpoint, error) {
	u, err := url.Parse(string(r.URL))
	if err != nil {
		return Endpoint{}, errors.New("not a valid URL")
	}
	var e Endpoint
	switch u.Scheme {
	case "redis":
	case "rediss":
		e.TLS = true
	default:
		return Endpoint{}, errors.New("want a redis:// or rediss:// URL")
	}
	if u.Hostname() == "" {
		return Endpoint{}, errors.New("no host")
	}
	if u.Opaque != "" || (u.RawQuery != "" && !onlyKnownQuery(u.Query())) {
		return Endpoint{}, errors.New("unsupported URL form or query")
	}
	e.Host = u.Hostname()
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Endpoint{}, errors.New("bad port")
	}
	e.Addr = net.JoinHostPort(e.Host, port)
	if u.User != nil {
		e.Username = u.User.Username()
		p, _ := u.User.Password()
		e.Password = Secret(p)
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return Endpoint{}, errors.New("the path must be a database number")
		}
		e.DB = n
	}
	if r.Username != "" {
		e.Username = r.Username
	}
	if r.Password != "" {
		e.Password = r.Password
	}
	e.TLS = e.TLS || r.TLS
	return e, nil
}

func onlyKnownQuery(q url.Values) bool {
	for k := range q {
		if k != "protocol" {
			return false
		}
	}
	return true
}

// Redacted returns the endpoint without credentials, for logs: "rediss://host:port/0".
func (r Redis) Redacted() string {
	e, err := r.Endpoint()
	if err != nil {
		if r.URL == "" {
			return "(not set)"
		}
		return "(invalid)"
	}
	scheme := "redis"
	if e.TLS {
		scheme = "rediss"
	}
	return fmt.Sprintf("%s://%s/%d", scheme, e.Addr, e.DB)
}

// Secret is a string that never prints: String, GoString, fmt verbs, JSON, text and
// slog all show "[redacted]" (or "" when empty). Use string(s) where the value is needed.
type Secret string

const redacted = "[redacted]"

func (s Secret) show() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns "[redacted]" for a set secret.
func (s Secret) String() string { return s.show() }

// GoString returns "[redacted]" for a set secret, so %#v does not leak it either.
func (s Secret) GoString() string { return `"` + s.show() + `"` }

// Format makes every fmt verb print the redacted form (%x and %q included).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.show())) }

// LogValue keeps the secret out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.show()) }

// MarshalText keeps the secret out of JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.show()), nil }

// Variables lists every environment variable Config reads, sorted.
func Variables() []string {
	keys := fieldKeys()
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
