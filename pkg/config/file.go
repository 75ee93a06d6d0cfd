package config

import (
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

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
		{"DATABASE_URL_FILE", c.Database.ConnStringFile, &c.Database.ConnString, map[string]bool{
			"DATABASE_URL": c.Database.ConnString != ""}},
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
