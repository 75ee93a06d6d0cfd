package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
)

// A path that is not clean names no route: a JSON 404, where http.ServeMux would
// redirect to the cleaned path with an HTML body repeating it.
func TestUncleanPathsAreJSON404(t *testing.T) {
	f := newFixture(t, nil, config.ModeLambda)
	for _, target := range []string{
		"/products/../../etc/passwd", "/products/..", "/products/./prod-0001", "//products/prod-0001",
		"/products//prod-0001", "/health/.", "/cache/clear/../clear", "/products/%2e%2e/health",
	} {
		for _, method := range []string{"GET", "POST"} {
			r := f.do(t, method, target, nil, "Authorization", "Bearer t0ken")
			body := readBody(t, r)
			if r.StatusCode != http.StatusNotFound || r.Header.Get("Location") != "" ||
				!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || strings.Contains(body, "<") {
				t.Errorf("%s %s: %d Location %q %s, want a JSON 404", method, target, r.StatusCode, r.Header.Get("Location"), body)
			}
		}
	}
	if r := f.do(t, "GET", "/products/prod-0001", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("a clean path: %d", r.StatusCode)
	}
}
