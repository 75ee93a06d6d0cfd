package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

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
