package config_test

import (
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
)

func TestPasswordSecretARN(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:storeapi/redis-AbCdEf"
	c, err := config.Parse(map[string]string{"REDIS_URL": "rediss://h:6379", "REDIS_PASSWORD_SECRET_ARN": arn}, config.ModeLambda)
	if err != nil || c.Redis.PasswordSecretARN != arn {
		t.Fatalf("Parse = %q, %v", c.Redis.PasswordSecretARN, err)
	}
	if c, err := config.Parse(map[string]string{}, config.ModeLambda); err != nil || c.Redis.PasswordSecretARN != "" {
		t.Fatalf("default: %q, %v", c.Redis.PasswordSecretARN, err)
	}

	t.Run("not with REDIS_PASSWORD", func(t *testing.T) {
		_, err := config.Parse(map[string]string{"REDIS_PASSWORD": "hunter2secret", "REDIS_PASSWORD_SECRET_ARN": arn}, config.ModeLambda)
		if err == nil {
			t.Fatal("both accepted")
		}
		for _, want := range []string{"REDIS_PASSWORD:", "REDIS_PASSWORD_SECRET_ARN:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %s: %v", want, err)
			}
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "123456789012") {
			t.Fatalf("error quotes a value: %v", err)
		}
	})

	for _, bad := range []string{
		"storeapi/redis",
		"arn:aws:secretsmanager:eu-west-1:123456789012:storeapi/redis",
		"arn:aws:ssm:eu-west-1:123456789012:parameter/redis",
		"arn:aws:secretsmanager::123456789012:secret:redis",
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:has space",
	} {
		t.Run(bad, func(t *testing.T) {
			_, err := config.Parse(map[string]string{"REDIS_PASSWORD_SECRET_ARN": bad}, config.ModeLambda)
			if err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD_SECRET_ARN:") {
				t.Fatalf("err = %v, want one naming REDIS_PASSWORD_SECRET_ARN", err)
			}
			if strings.Contains(err.Error(), bad) {
				t.Fatalf("error quotes the value: %v", err)
			}
		})
	}
}
