package config

import (
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/acmestore/storeapi/pkg/secret"
)

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
		if err := secret.CheckARN(r.PasswordSecretARN); err != nil {
			add("REDIS_PASSWORD_SECRET_ARN", strings.TrimPrefix(err.Error(), "secret: "))
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
		{"CACHE_REFRESH_BACKOFF", c.Cache.RefreshBackoff},
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
		{"CACHE_STALE_WHILE_REVALIDATE", c.Cache.StaleWhileRevalidate},
		{"CACHE_STALE_IF_ERROR", c.Cache.StaleIfError},
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
	switch p := c.Cache.KeyPrefix; {
	case p == "" && !validStage(c.Stage):
		// The default derives from STAGE, which is named below.
	case CheckPrefix(p) != nil:
		add("CACHE_KEY_PREFIX", CheckPrefix(p).Error())
	case validStage(c.Stage) && !strings.HasSuffix(p, ":"+string(c.Stage)+":"):
		// Two prefixes that end in different stages cannot be a parent and a child
		// unless the longer one repeats the shorter whole, stage included, before
		// its own stage (store:prod: and store:prod:x:dev:); see the README.
		add("CACHE_KEY_PREFIX", "must end with the stage as its last segment (<name>:<STAGE>:, as the default store:<STAGE>: does), so that no stage's prefix contains another's")
	}
	if j := c.Cache.TTLJitter; j < 0 || j >= 1 {
		add("CACHE_TTL_JITTER", "must be in [0, 1)")
	}
	if b := c.Cache.EarlyRefresh; b < 0 || b > 10 || b != b {
		add("CACHE_EARLY_REFRESH", "must be between 0 (off) and 10")
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
	bad = append(bad, c.validateL1()...)
	bad = append(bad, c.validateTracing()...)
	return append(bad, c.validateDatabase()...)
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
