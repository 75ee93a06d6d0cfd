package config

import (
	"fmt"
	"time"
)

// L1Mode says whether the in-process tier (L1) is used: "auto", "on" or "off".
type L1Mode string

// The values of CACHE_L1.
const (
	// L1Auto turns L1 on where it is safe and pays: a standalone Redis, a fixed
	// password (no Secrets Manager provider), the HTTP mode. The server's acceptance of
	// CLIENT TRACKING is probed on first use; a refusal leaves L2 only.
	L1Auto L1Mode = "auto"
	// L1On turns L1 on, also under Lambda; start-up fails where it cannot work (cluster
	// mode, a Secrets Manager password). A server that refuses tracking still leaves
	// L2 only.
	L1On L1Mode = "on"
	// L1Off never uses L1.
	L1Off L1Mode = "off"
)

// UnmarshalText accepts auto, on and off.
func (m *L1Mode) UnmarshalText(b []byte) error {
	switch v := L1Mode(b); v {
	case L1Auto, L1On, L1Off:
		*m = v
		return nil
	}
	return fmt.Errorf("want auto, on or off")
}

// L1 is the in-process tier in front of Redis: go-redis's server-assisted client-side
// cache (RESP3 CLIENT TRACKING), kept coherent by Redis's invalidation messages, with
// a stated staleness bound enforced by the cache package (see cache.L1).
type L1 struct {
	// L1Mode turns the tier on or off. auto: on in the HTTP mode against a standalone
	// Redis with a fixed password; off under Lambda, where every read must first wait
	// one round trip for invalidations that queued while the environment was frozen,
	// which costs what the hit saves (README, performance); off in cluster mode
	// (go-redis caches for the standalone client only) and with
	// REDIS_PASSWORD_SECRET_ARN (go-redis turns client-side caching off with a
	// credentials provider).
	//
	// env: CACHE_L1; default: auto
	L1Mode L1Mode `env:"CACHE_L1" envDefault:"auto"`

	// L1MaxBytes bounds the memory of the tier's entries (go-redis's estimate: the
	// value, the key and about 100 bytes). An entry larger than a sixteenth of it is
	// never kept in L1.
	//
	// env: CACHE_L1_MAX_BYTES; default: 8 MiB under Lambda, 64 MiB in HTTP mode
	L1MaxBytes int64 `env:"CACHE_L1_MAX_BYTES"`

	// L1MaxStaleness is the stated bound: a read that starts this long after an
	// external write, DEL or cacheClear has returned never gets the older value from
	// L1. The tier serves a hit only while a round trip on its tracking connection
	// (which applies every invalidation queued before it) completed within this
	// bound; otherwise the read first makes that round trip. Under Lambda every read
	// makes it, whatever this says (a frozen environment's clocks cannot say how long
	// it was frozen).
	//
	// env: CACHE_L1_MAX_STALENESS; default: 50ms; between 1ms and 10s
	L1MaxStaleness time.Duration `env:"CACHE_L1_MAX_STALENESS" envDefault:"50ms"`
}

// resolveL1 fills L1MaxBytes for the mode.
func (c *Config) resolveL1() {
	if c.L1.L1MaxBytes == 0 {
		c.L1.L1MaxBytes = pick(c.Mode == ModeLambda, int64(8<<20), int64(64<<20))
	}
}

// validateL1 reports the bad L1 settings, and CACHE_L1=on where L1 cannot work.
func (c *Config) validateL1() []string {
	var bad []string
	l := c.L1
	if l.L1MaxBytes < 64<<10 {
		bad = append(bad, "CACHE_L1_MAX_BYTES: must be at least 65536")
	}
	if l.L1MaxStaleness < time.Millisecond || l.L1MaxStaleness > 10*time.Second {
		bad = append(bad, "CACHE_L1_MAX_STALENESS: must be between 1ms and 10s")
	}
	if l.L1Mode == L1On {
		if why := c.l1Impossible(); why != "" {
			bad = append(bad, "CACHE_L1: on is not possible: "+why)
		}
	}
	return bad
}

// l1Impossible says why L1 cannot work with these settings, or "".
func (c *Config) l1Impossible() string {
	switch {
	case c.Redis.Cluster:
		return "cluster mode (REDIS_CLUSTER): go-redis caches for the standalone client only"
	case c.Redis.PasswordSecretARN != "":
		return "REDIS_PASSWORD_SECRET_ARN: go-redis turns client-side caching off with a credentials provider"
	}
	if ep, err := c.Redis.Endpoint(); err == nil && ep.DB != 0 {
		return "database " + fmt.Sprint(ep.DB) + ": go-redis caches database 0 only"
	}
	if ep, err := c.Redis.Endpoint(); err == nil && ep.Protocol == 2 {
		return "protocol=2: invalidations need RESP3"
	}
	return ""
}

// L1Decision says whether the in-process tier is to be used, and why (for the
// start-up line and health): on in the mode "on", and in "auto" only where it is
// possible and pays. The server's acceptance of tracking is checked later, on first
// use (see cache.L1).
func (c Config) L1Decision() (on bool, why string) {
	switch c.L1.L1Mode {
	case L1Off:
		return false, "CACHE_L1=off"
	case L1On:
		if c.Mode == ModeLambda {
			return true, "CACHE_L1=on (Lambda: every read waits one round trip for pending invalidations)"
		}
		return true, "CACHE_L1=on"
	}
	if why := c.l1Impossible(); why != "" {
		return false, "auto: " + why
	}
	if c.Mode == ModeLambda {
		return false, "auto: Lambda, where the round trip each read needs after a freeze costs what an L1 hit saves"
	}
	return true, "auto: standalone Redis, HTTP mode"
}
