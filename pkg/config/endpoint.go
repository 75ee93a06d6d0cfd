package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Endpoint is the parsed REDIS_URL with REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS
// applied.
type Endpoint struct {
	// Addr is host:port; the port defaults to 6379.
	Addr string

	// Username is the ACL user: REDIS_USERNAME, else the URL's, else none.
	Username string

	// Password is the AUTH password: REDIS_PASSWORD (or REDIS_PASSWORD_FILE), else the
	// URL's, else none.
	Password Secret

	// DB is the database number: the URL's path (/2), or its db option; default 0.
	DB int

	// TLS is true for rediss:// or when REDIS_TLS is set.
	TLS bool

	// Host is Addr's host, the name a TLS certificate is checked against by default.
	Host string

	// Protocol is the RESP version from the URL's protocol option: 2 or 3; 0 leaves
	// go-redis's default (3, falling back to 2 on a server without HELLO).
	Protocol int

	// ClientName is the URL's client_name option: every connection is named so in
	// CLIENT LIST (one more command on each new connection). Empty: none.
	ClientName string
}

// urlOptions are the go-redis URL query options REDIS_URL accepts: they say which
// database and protocol to use and who the client is, which nothing else sets.
var urlOptions = []string{"client_name", "db", "protocol"}

// urlOptionVars are go-redis URL query options that a REDIS_* variable sets here. They
// are refused rather than honoured: one way to set each thing, and a URL must not
// escape the mode's defaults or, for skip_verify, the STAGE=prod guard. The other
// go-redis tuning options (pool_fifo, min_idle_conns, conn_max_lifetime, ...) have no
// setting here and are refused too.
var urlOptionVars = map[string]string{
	"dial_timeout":       "REDIS_DIAL_TIMEOUT",
	"read_timeout":       "REDIS_READ_TIMEOUT",
	"write_timeout":      "REDIS_WRITE_TIMEOUT",
	"pool_size":          "REDIS_POOL_SIZE",
	"max_active_conns":   "REDIS_POOL_SIZE",
	"max_retries":        "REDIS_MAX_RETRIES",
	"conn_max_idle_time": "REDIS_CONN_MAX_IDLE_TIME",
	"idle_timeout":       "REDIS_CONN_MAX_IDLE_TIME",
	"skip_verify":        "REDIS_TLS_INSECURE_SKIP_VERIFY",
}

// Endpoint parses REDIS_URL with go-redis's own grammar ([redis.ParseURL]), limited to
// the redis:// and rediss:// schemes, a host that is present (go-redis would assume
// localhost), a TCP port, a database number from 0 to 2³¹-1 and the query options in
// urlOptions. Its errors are fixed sentences: they never quote the URL, which may hold
// a password, and so never pass on go-redis's, which may.
func (r Redis) Endpoint() (Endpoint, error) {
	raw := string(r.URL)
	u, err := url.Parse(raw)
	if err != nil {
		return Endpoint{}, errors.New("not a valid URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return Endpoint{}, errors.New("want a redis:// or rediss:// URL")
	}
	if u.Hostname() == "" {
		return Endpoint{}, errors.New("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Endpoint{}, errors.New("bad port")
		}
	}
	if err := checkURLQuery(u.Query()); err != nil {
		return Endpoint{}, err
	}
	o, err := redis.ParseURL(raw)
	if err != nil {
		return Endpoint{}, explainURL(u)
	}
	if o.DB < 0 || o.DB > math.MaxInt32 {
		return Endpoint{}, errors.New("database number out of range")
	}
	if o.Protocol != 0 && o.Protocol != 2 && o.Protocol != 3 {
		return Endpoint{}, errors.New("the protocol option must be 2 or 3")
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return Endpoint{}, errors.New("no host")
	}
	e := Endpoint{
		Addr:       o.Addr,
		Username:   o.Username,
		Password:   Secret(o.Password),
		DB:         o.DB,
		TLS:        o.TLSConfig != nil || r.TLS,
		Host:       host,
		Protocol:   o.Protocol,
		ClientName: o.ClientName,
	}
	if r.Username != "" {
		e.Username = r.Username
	}
	if r.Password != "" {
		e.Password = r.Password
	}
	return e, nil
}

// checkURLQuery refuses every query option but urlOptions. It names an option only
// when it is one of go-redis's: an unknown name could be anything, a secret included.
func checkURLQuery(q url.Values) error {
	for k := range q {
		if slices.Contains(urlOptions, k) {
			continue
		}
		if v, ok := urlOptionVars[k]; ok {
			return fmt.Errorf("the %s option is not supported; set %s instead", k, v)
		}
		return errors.New("unsupported query option (only db, protocol and client_name; timeouts, pool and retries come from the REDIS_* variables)")
	}
	return nil
}

// explainURL says in fixed words why go-redis refused u, which passed Endpoint's own
// checks: its path or its db or protocol option is not a number. The path is tried
// alone, with go-redis's grammar, to tell which.
func explainURL(u *url.URL) error {
	bare := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if _, err := redis.ParseURL(bare.String()); err != nil {
		return errors.New("the path must be a database number (/0)")
	}
	return errors.New("the db and protocol options must be whole numbers")
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
