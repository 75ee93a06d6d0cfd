package secret

import (
	"strings"
	"testing"
)

// TestEndpoint checks the order of precedence of the endpoint settings, and that
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true leaves the SDK its own endpoint.
func TestEndpoint(t *testing.T) {
	const (
		opt = "http://option.test"
		svc = "http://service.test"
		all = "http://all.test"
	)
	tests := []struct {
		name    string
		option  string
		service string // AWS_ENDPOINT_URL_SECRETS_MANAGER
		global  string // AWS_ENDPOINT_URL
		ignore  string // AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
		want    string // "" for nil, the SDK's endpoint
	}{
		{"nothing set", "", "", "", "", ""},
		{"option first", opt, svc, all, "", opt},
		{"option despite ignore", opt, svc, all, "true", opt},
		{"service variable", "", svc, all, "", svc},
		{"global variable", "", "", all, "", all},
		{"ignored", "", svc, all, "true", ""},
		{"ignore false", "", svc, all, "false", svc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", tt.service)
			t.Setenv("AWS_ENDPOINT_URL", tt.global)
			t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", tt.ignore)
			got, err := endpoint(tt.option)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == "") || (got != nil && *got != tt.want) {
				t.Fatalf("endpoint = %v, want %q", got, tt.want)
			}
		})
	}

	t.Run("bad ignore value", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", svc)
		t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "sometimes")
		if _, err := endpoint(""); err == nil || !strings.Contains(err.Error(), "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
			t.Fatalf("err = %v, want one naming AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", err)
		}
	})
}
