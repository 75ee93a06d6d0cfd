package samtest

import (
	"fmt"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
)

// TestDatabaseParameters: the product database reaches getProduct alone, from a
// NoEcho parameter, with one connection per environment, and its secret's policy is
// granted to getProduct only when the secret is named.
func TestDatabaseParameters(t *testing.T) {
	params := parse(t, nil).Parameters
	for _, c := range []struct {
		param, value string
		ok           bool
	}{
		{"DatabaseUrl", "", true},
		{"DatabaseUrl", "postgres://storeapi@db.abc123.eu-west-1.rds.amazonaws.com:5432/store?sslmode=require", true},
		{"DatabaseUrl", "postgresql://storeapi@proxy.proxy-abc123.eu-west-1.rds.amazonaws.com/store", true},
		{"DatabaseUrl", "mysql://storeapi@db/store", false},
		{"DatabaseUrl", "postgres://has space@db/store", false},
		{"DatabasePasswordSecretArn", "", true},
		{"DatabasePasswordSecretArn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf", true},
		{"DatabasePasswordSecretArn", "storeapi/db", false},
	} {
		if got := satisfies(t, params[c.param], c.value); got != c.ok {
			t.Errorf("%s = %q: accepted %v, want %v", c.param, c.value, got, c.ok)
		}
	}
	if p := params["DatabaseUrl"]; !deref(p.NoEcho) {
		t.Error("DatabaseUrl is not NoEcho: a URL can carry a password")
	}

	const dbURL = "postgres://storeapi@db.abc123.eu-west-1.rds.amazonaws.com:5432/store?sslmode=require"
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf"
	s := parse(t, map[string]any{
		"RedisUrl": "redis://r:6379", "DatabaseUrl": dbURL, "DatabasePasswordSecretArn": arn,
	})
	fns := s.merged(t)
	for _, fn := range functions {
		vars := env(fns[fn.id])
		if fn.id != "GetProductFunction" {
			if vars["DATABASE_URL"] != "" {
				t.Errorf("%s gets DATABASE_URL; only getProduct reads products", fn.id)
			}
			continue
		}
		if vars["DATABASE_URL"] != dbURL || vars["DATABASE_PASSWORD_SECRET_ARN"] != arn {
			t.Errorf("%s: DATABASE_URL %q, DATABASE_PASSWORD_SECRET_ARN %q", fn.id, vars["DATABASE_URL"], vars["DATABASE_PASSWORD_SECRET_ARN"])
		}
		c, err := config.Parse(vars, config.ModeLambda)
		if err != nil {
			t.Fatalf("%s: %v", fn.id, err)
		}
		if c.Database.MaxConns != 1 {
			t.Errorf("%s: %d database connections per environment, want 1", fn.id, c.Database.MaxConns)
		}
		var got []any
		for _, p := range list(dig(s.Resolved, "Resources", fn.id, "Properties", "Policies")) {
			if p != nil {
				got = append(got, list(obj(p)["Statement"])...)
			}
		}
		want := []any{map[string]any{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: policy statements %v, want %v", fn.id, got, want)
		}
	}
	rule := dig(rawTemplate(t), "Rules", "DatabaseSecretNeedsUrl")
	if rule == nil {
		t.Error("no rule that refuses DatabasePasswordSecretArn without DatabaseUrl")
	}
}
