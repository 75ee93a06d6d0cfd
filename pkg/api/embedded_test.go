package api_test

import (
	"strings"
	"testing"

	"github.com/acmestore/storeapi/pkg/config"
)

// TestHealthEmbeddedNotes checks health's notes in the local run with the embedded
// Redis (miniredis, which answers INFO with its clients section only): they say plainly
// that there are no server figures, and nothing reads like a failure. The embedded Redis
// exists only in the local run's HTTP mode, so there is no Lambda entry to drive.
func TestHealthEmbeddedNotes(t *testing.T) {
	f := newFixture(t, nil, config.ModeHTTP)
	f.api.Embedded = true
	code, d, body := getHealth(t, f)
	if code != 200 || d.Status != "pass" {
		t.Fatalf("%d %s", code, body)
	}
	var plain bool
	for _, n := range d.Notes {
		if strings.Contains(n, "unavailable") || strings.Contains(n, "error") {
			t.Errorf("note %q reads like a failure of the embedded Redis", n)
		}
		if strings.Contains(n, "the embedded Redis does not report them") {
			plain = true
		}
	}
	if !plain {
		t.Errorf("no note says the embedded Redis has no server figures: %q", d.Notes)
	}
	if _, ok := d.Checks["app:productCache"]; !ok {
		t.Errorf("the application's figures are missing: %s", body)
	}

	// A real Redis that fails INFO is still reported as such.
	f.api.Embedded = false
	_, d, body = getHealth(t, f)
	if !strings.Contains(body, "server figures unavailable: server_error") {
		t.Errorf("not embedded: notes %q, want the server error", d.Notes)
	}
}
