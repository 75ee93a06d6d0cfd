package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmestore/storeapi/pkg/config"
)

func TestDatabaseDefaultsPerMode(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://u:pw@db:5432/store"}
	l, err := config.Parse(env, config.ModeLambda)
	if err != nil {
		t.Fatal(err)
	}
	if l.Database.MaxConns != 1 || l.Database.ConnectTimeout != time.Second || !l.Database.Listen {
		t.Errorf("lambda: %+v", l.Database)
	}
	h, err := config.Parse(env, config.ModeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if h.Database.MaxConns < 4 || h.Database.ConnectTimeout != 2*time.Second {
		t.Errorf("http: %+v", h.Database)
	}
	none, err := config.Parse(map[string]string{}, config.ModeHTTP)
	if err != nil || none.Database.ConnString != "" {
		t.Errorf("no DATABASE_URL: %+v, %v", none.Database, err)
	}
}

func TestDatabaseURLFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(p, []byte("postgres://u:s3cr3t@db/store\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(map[string]string{"DATABASE_URL_FILE": p}, config.ModeHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Database.ConnString) != "postgres://u:s3cr3t@db/store" {
		t.Errorf("ConnString not read from the file")
	}
	_, err = config.Parse(map[string]string{"DATABASE_URL_FILE": p, "DATABASE_URL": "postgres://x:y@h/d"}, config.ModeHTTP)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL_FILE: cannot be combined with DATABASE_URL") {
		t.Errorf("both set: %v", err)
	}
}

func TestDatabaseBadSettingsNameTheVariableNotTheValue(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DATABASE_URL": "mysql:s3cr3t"}, "DATABASE_URL: want postgres://"},
		{map[string]string{"DATABASE_URL": "postgres://u:s3cr3t@h/d", "PRODUCT_SOURCE_URL": "http://x"}, "DATABASE_URL: cannot be combined with PRODUCT_SOURCE_URL"},
		{map[string]string{"DATABASE_URL": "postgres://u:s3cr3t@h/d", "DATABASE_PASSWORD_SECRET_ARN": "s3cr3t"}, "DATABASE_PASSWORD_SECRET_ARN: "},
		{map[string]string{"DATABASE_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}, "needs DATABASE_URL"},
		{map[string]string{"DATABASE_POOL_SIZE": "-1"}, "DATABASE_POOL_SIZE: must be at least 1"},
		{map[string]string{"DATABASE_CONNECT_TIMEOUT": "soon"}, "DATABASE_CONNECT_TIMEOUT: not a duration"},
	}
	for _, tc := range cases {
		_, err := config.Parse(tc.env, config.ModeLambda)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%v: error shows a value: %v", tc.env, err)
		}
	}
	ok := map[string]string{"DATABASE_URL": "postgres://u@h/d",
		"DATABASE_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"}
	if _, err := config.Parse(ok, config.ModeLambda); err != nil {
		t.Errorf("URL with a secret ARN: %v", err)
	}
}
